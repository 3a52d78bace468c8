#include "sync_agent/engine/types.h"

namespace mobilesync::engine {

std::string ToString(const LocalId& id) {
  return id.mailbox + "/" + std::to_string(id.uidvalidity) + "/" +
         std::to_string(id.uid);
}

const char* MessageStateName(MessageState state) {
  switch (state) {
    case MessageState::kUnread:
      return "unread";
    case MessageState::kRead:
      return "read";
    case MessageState::kTrash:
      return "trash";
    case MessageState::kDestroyed:
      return "destroyed";
  }
  return "?";
}

char MessageStateLetter(MessageState state) {
  switch (state) {
    case MessageState::kUnread:
      return 'U';
    case MessageState::kRead:
      return 'R';
    case MessageState::kTrash:
      return 'M';
    case MessageState::kDestroyed:
      return 'D';
  }
  return '?';
}

const char* ActionKindName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kInsert:
      return "insert";
    case ActionKind::kMarkRead:
      return "mark-read";
    case ActionKind::kMarkUnread:
      return "mark-unread";
    case ActionKind::kMoveToTrash:
      return "move-to-trash";
    case ActionKind::kRestoreFromTrash:
      return "restore-from-trash";
    case ActionKind::kDestroy:
      return "destroy";
    case ActionKind::kUnmap:
      return "unmap";
    case ActionKind::kDeliver:
      return "deliver";
    case ActionKind::kFiledAsSent:
      return "filed-as-sent";
  }
  return "?";
}

bool IsStateChange(ActionKind kind) {
  return kind == ActionKind::kMarkRead || kind == ActionKind::kMarkUnread ||
         kind == ActionKind::kMoveToTrash ||
         kind == ActionKind::kRestoreFromTrash;
}

ActionKind StateChangeKind(MessageState from, MessageState to) {
  if (to == MessageState::kTrash) return ActionKind::kMoveToTrash;
  if (from == MessageState::kTrash) return ActionKind::kRestoreFromTrash;
  return to == MessageState::kRead ? ActionKind::kMarkRead
                                   : ActionKind::kMarkUnread;
}

std::string ToString(const Action& action) {
  std::string s = ActionKindName(action.kind);
  if (action.seq != 0) s += " #" + std::to_string(action.seq);
  if (action.local.valid()) s += " local " + ToString(action.local);
  if (action.remote != kNoRemoteId) {
    s += " remote " + std::to_string(action.remote);
  }
  if (IsStateChange(action.kind)) {
    s += std::string(" -> ") + MessageStateName(action.meta.state);
  }
  return s;
}

const char* AckOutcomeName(AckOutcome outcome) {
  switch (outcome) {
    case AckOutcome::kApplied:
      return "applied";
    case AckOutcome::kNoop:
      return "no-op";
    case AckOutcome::kSuperseded:
      return "superseded";
    case AckOutcome::kRejected:
      return "rejected";
  }
  return "?";
}

const char* FrameKindName(FrameKind kind) {
  switch (kind) {
    case FrameKind::kHello:
      return "hello";
    case FrameKind::kListRequest:
      return "list-request";
    case FrameKind::kFetch:
      return "fetch";
    case FrameKind::kSwap:
      return "swap";
    case FrameKind::kCommit:
      return "commit";
    case FrameKind::kHelloReply:
      return "hello-reply";
    case FrameKind::kList:
      return "list";
    case FrameKind::kFetched:
      return "fetched";
    case FrameKind::kSyncComplete:
      return "sync-complete";
    case FrameKind::kCommitAck:
      return "commit-ack";
    case FrameKind::kAction:
      return "action";
    case FrameKind::kAck:
      return "ack";
    case FrameKind::kNack:
      return "nack";
  }
  return "?";
}

}  // namespace mobilesync::engine
