// The two halves of an update sync on the agent side, as pure decisions
// (seed 000 figures 9A/9B): which local action-list entries to replay to the
// server, and what to do with each action the server sends after the swap.
// SyncSession (sync_session.h) sequences them and turns them into ops.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_UPDATE_SYNC_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_UPDATE_SYNC_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sync_agent/engine/id_map.h"
#include "sync_agent/engine/local_view.h"
#include "sync_agent/engine/window.h"

namespace mobilesync::engine {

struct ReplayPlan {
  // Entries to send, in list order, with the remote id filled in from the map
  // (and an insert's meta refreshed from the mailbox).
  std::vector<Action> send;
  // Entries that need no frame, with the reason (deleted at once, reported):
  // a change of a message outside the window, an insert of a message that is
  // already mapped, gone, or too old for the window (pull handles inserts).
  std::vector<std::pair<uint64_t, std::string>> skip;
};

ReplayPlan PlanReplay(const std::vector<Action>& entries, const LocalView& local, const IdMap& map,
                      const WindowPolicy& window);

// What the agent does with one action from the server.
struct RemoteApply {
  enum class Step : uint8_t {
    kAckNow,       // nothing to do locally: ack with `outcome`
    kMapExisting,  // an earlier attempt appended it: map `local`, ack
    kAppend,       // append the message locally, map it from the new uid, ack
    kSetState,     // set `local`'s state to `state`, ack
    kDestroy,      // destroy `local`, then unmap it, then ack
    kUnmap,        // unmap `local` (left the window; the local copy stays), ack
    kSubmit,       // submit the composed message through the MTA, ack
    kFileSent,     // file the message in the local Sent folder, ack
  };
  Step step = Step::kAckNow;
  AckOutcome outcome = AckOutcome::kApplied;
  LocalId local;
  MessageState state = MessageState::kUnread;
  std::string note;  // for kAckNow with a no-op or rejection: why
};

// REQUIRES: action came from the server in this session's swap phase.
// Idempotent: deciding on the same action again after it was applied yields
// kAckNow(kApplied) or a step whose effect is already there.
RemoteApply PlanRemoteApply(const Action& action, const LocalView& local, const IdMap& map);

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_UPDATE_SYNC_H_
