#include "sync_agent/session_codec.h"

#include <algorithm>
#include <utility>

#include "wire/limits.h"

namespace mobilesync::agent {
namespace pb = wire::pb;
using engine::FrameKind;

bool ParseDecimalRemoteId(const std::string& text, engine::RemoteId* out) {
  if (text.empty() || text.size() > 20 || text[0] == '0') return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

namespace {

pb::MessageState ToWire(engine::MessageState s) {
  switch (s) {
    case engine::MessageState::kUnread: return pb::MESSAGE_STATE_UNREAD;
    case engine::MessageState::kRead: return pb::MESSAGE_STATE_READ;
    case engine::MessageState::kTrash:
    case engine::MessageState::kDestroyed: return pb::MESSAGE_STATE_TRASHED;
  }
  return pb::MESSAGE_STATE_UNREAD;
}

engine::MessageState FromWire(pb::MessageState s) {
  switch (s) {
    case pb::MESSAGE_STATE_READ: return engine::MessageState::kRead;
    case pb::MESSAGE_STATE_TRASHED: return engine::MessageState::kTrash;
    default: return engine::MessageState::kUnread;
  }
}

bool KindToWire(engine::ActionKind k, pb::ActionKind* out) {
  switch (k) {
    case engine::ActionKind::kInsert: *out = pb::ACTION_KIND_INSERT; return true;
    case engine::ActionKind::kMarkRead: *out = pb::ACTION_KIND_MARK_READ; return true;
    case engine::ActionKind::kMarkUnread: *out = pb::ACTION_KIND_MARK_UNREAD; return true;
    case engine::ActionKind::kMoveToTrash: *out = pb::ACTION_KIND_TRASH; return true;
    case engine::ActionKind::kRestoreFromTrash: *out = pb::ACTION_KIND_RESTORE; return true;
    case engine::ActionKind::kDestroy: *out = pb::ACTION_KIND_DESTROY; return true;
    case engine::ActionKind::kUnmap: *out = pb::ACTION_KIND_UNMAP; return true;
    case engine::ActionKind::kFiledAsSent: *out = pb::ACTION_KIND_FILED_AS_SENT; return true;
    case engine::ActionKind::kDeliver: return false;  // server -> agent only
  }
  return false;
}

// The server's action as the engine sees it. The state a state change
// leads to comes with the action when the server names it; else it is the
// one the kind implies.
bool KindFromWire(const pb::Action& a, engine::Action* out) {
  using engine::ActionKind;
  using engine::MessageState;
  const bool has_state = a.state() != pb::MESSAGE_STATE_UNSPECIFIED;
  switch (a.kind()) {
    case pb::ACTION_KIND_INSERT:
      out->kind = ActionKind::kInsert;
      out->meta.state = FromWire(a.state());
      return true;
    case pb::ACTION_KIND_MARK_READ:
      out->kind = ActionKind::kMarkRead;
      out->meta.state = MessageState::kRead;
      return true;
    case pb::ACTION_KIND_MARK_UNREAD:
      out->kind = ActionKind::kMarkUnread;
      out->meta.state = MessageState::kUnread;
      return true;
    case pb::ACTION_KIND_TRASH:
      out->kind = ActionKind::kMoveToTrash;
      out->meta.state = MessageState::kTrash;
      return true;
    case pb::ACTION_KIND_RESTORE:
      out->kind = ActionKind::kRestoreFromTrash;
      out->meta.state = has_state && a.state() != pb::MESSAGE_STATE_TRASHED ? FromWire(a.state())
                                                                            : MessageState::kRead;
      return true;
    case pb::ACTION_KIND_DESTROY:
      out->kind = ActionKind::kDestroy;
      out->meta.state = MessageState::kDestroyed;
      return true;
    case pb::ACTION_KIND_UNMAP: out->kind = ActionKind::kUnmap; return true;
    case pb::ACTION_KIND_DELIVER: out->kind = ActionKind::kDeliver; return true;
    case pb::ACTION_KIND_FILED_AS_SENT:
      out->kind = ActionKind::kFiledAsSent;
      out->meta.state = MessageState::kRead;
      return true;
    default: return false;
  }
}

// Both sides agree on a message's match key: its Message-ID when it has
// one, else its GUID (see LocalMailbox). On the wire they travel apart.
std::string MatchKeyFromWire(const std::string& message_id, const std::string& guid) {
  return message_id.empty() ? guid : message_id;
}

void MatchKeyToWire(const std::string& key, pb::Action* a) {
  if (key.empty()) return;
  if (key.front() == '<') {
    if (key.size() <= wire::kMaxMessageIdBytes) a->set_message_id(key);
  } else if (key.size() <= wire::kMaxGuidBytes) {
    a->set_message_guid(key);
  }
}

Status BadId(const std::string& what, const std::string& id) {
  return Status::InvalidArgument("the server sent a non-decimal remote id in " + what,
                                 id.substr(0, 40));
}

}  // namespace

SessionCodec::SessionCodec(uint32_t session_id, std::string user)
    : session_id_(session_id), user_(std::move(user)) {}

bool SessionCodec::NeedsBody(const engine::Frame& f) const {
  return f.kind == FrameKind::kAction &&
         (f.action.kind == engine::ActionKind::kInsert ||
          f.action.kind == engine::ActionKind::kFiledAsSent) &&
         seq_of_tag_.count(f.tag) == 0;
}

Status SessionCodec::Encode(const engine::Frame& f, std::string body,
                            std::vector<wire::Frame>* out) {
  switch (f.kind) {
    case FrameKind::kHello: {
      if (begun_) return Status::OK();
      begun_ = true;
      pb::BeginSession m;
      m.set_user(user_);
      m.set_agent_generation(f.generation);
      out->push_back(wire::MakeFrame(session_id_, std::move(m)));
      return Status::OK();
    }
    case FrameKind::kListRequest: {
      if (list_requested_) return Status::OK();
      list_requested_ = true;
      pb::ListRequest m;
      m.set_offset(0);
      m.set_limit(wire::kMaxListEntries);
      out->push_back(wire::MakeFrame(session_id_, std::move(m)));
      return Status::OK();
    }
    case FrameKind::kFetch:
      for (engine::RemoteId id : f.ids) {
        if (!fetching_.insert(id).second) continue;  // asked already
        pb::Fetch m;
        m.set_request_id(next_request_++);
        m.set_remote_id(std::to_string(id));
        out->push_back(wire::MakeFrame(session_id_, std::move(m)));
      }
      return Status::OK();
    case FrameKind::kSwap: {
      if (swapped_) return Status::OK();
      swapped_ = true;
      pb::SwapRequest m;
      m.set_last_seq(next_seq_ - 1);
      out->push_back(wire::MakeFrame(session_id_, std::move(m)));
      return Status::OK();
    }
    case FrameKind::kCommit: {
      if (commit_sent_) return Status::OK();
      commit_sent_ = true;
      out->push_back(EndSession(true));
      return Status::OK();
    }
    case FrameKind::kAction: return EncodeAction(f, std::move(body), out);
    case FrameKind::kAck: {
      pb::Ack m;
      m.set_first_seq(f.tag);
      m.set_last_seq(f.tag);
      out->push_back(wire::MakeFrame(session_id_, std::move(m)));
      return Status::OK();
    }
    case FrameKind::kNack: {
      pb::Nack m;
      m.set_seq(f.tag);
      m.set_reason(pb::NACK_REASON_TEMPORARY_FAILURE);
      out->push_back(wire::MakeFrame(session_id_, std::move(m)));
      return Status::OK();
    }
    default:
      return Status::InvalidArgument(std::string("the engine sent a server frame: ") +
                                     engine::FrameKindName(f.kind));
  }
}

Status SessionCodec::EncodeAction(const engine::Frame& f, std::string body,
                                  std::vector<wire::Frame>* out) {
  if (seq_of_tag_.count(f.tag) != 0) return Status::OK();  // a re-send
  const engine::Action& a = f.action;
  pb::Action m;
  pb::ActionKind kind;
  if (!KindToWire(a.kind, &kind)) {
    return Status::InvalidArgument(std::string("not an agent action: ") +
                                   engine::ActionKindName(a.kind));
  }
  m.set_kind(kind);
  const bool carries_message =
      a.kind == engine::ActionKind::kInsert || a.kind == engine::ActionKind::kFiledAsSent;
  if (carries_message) {
    // The local message's stable id is the server's idempotency key: a
    // re-sent insert (after a crash) gets the same remote id back.
    std::string key = engine::ToString(a.local);
    if (key.size() > wire::kMaxInsertKeyBytes) key.resize(wire::kMaxInsertKeyBytes);
    m.set_insert_key(key);
    m.set_date(a.meta.date < 0 ? 0 : a.meta.date);
    m.set_state(ToWire(a.meta.state));
    MatchKeyToWire(a.meta.match_key, &m);
    if (body.empty()) {
      return Status::InvalidArgument("no body for " + engine::ToString(a));
    }
  } else {
    if (a.remote == engine::kNoRemoteId) {
      return Status::InvalidArgument("action without a remote id: " + engine::ToString(a));
    }
    m.set_remote_id(std::to_string(a.remote));
    body.clear();
  }
  const uint64_t seq = next_seq_++;
  m.set_seq(seq);
  seq_of_tag_[f.tag] = seq;
  tag_of_seq_[seq] = f.tag;
  out->push_back(wire::MakeFrame(session_id_, std::move(m), std::move(body)));
  return Status::OK();
}

wire::Frame SessionCodec::EndSession(bool ok, const std::string& detail, bool no_change) {
  end_sent_ = true;
  pb::EndSession m;
  m.set_outcome(ok ? pb::SESSION_OUTCOME_OK : pb::SESSION_OUTCOME_ABORTED);
  if (!ok && no_change) {
    m.set_no_change(true);
    no_change_sent_ = true;
  }
  if (!detail.empty()) m.set_detail(detail.substr(0, wire::kMaxDetailBytes));
  return wire::MakeFrame(session_id_, std::move(m));
}

Status SessionCodec::DecodeList(const pb::List& list, Decoded* out) {
  for (const pb::ListEntry& e : list.entries()) {
    engine::RemoteMessage m;
    if (!ParseDecimalRemoteId(e.remote_id(), &m.id)) return BadId("LIST", e.remote_id());
    m.meta.date = e.date();
    m.meta.state = FromWire(e.state());
    m.meta.match_key = MatchKeyFromWire(e.message_id(), e.message_guid());
    listed_[m.id] = m.meta;
    list_.push_back(std::move(m));
  }
  for (const std::string& id : list.destroyed_ids()) {
    engine::RemoteId r = engine::kNoRemoteId;
    if (!ParseDecimalRemoteId(id, &r)) return BadId("LIST", id);
    destroyed_.push_back(r);
  }
  if (list_.size() > wire::kMaxRemoteWindow || destroyed_.size() > wire::kMaxRemoteWindow) {
    return Status::InvalidArgument("the server's LIST pages add up to more than the window limit");
  }
  // Both lists are paged from the same offset (protocol.md 6.4).
  const uint64_t page =
      static_cast<uint64_t>(std::max(list.entries_size(), list.destroyed_ids_size()));
  const uint64_t have = uint64_t{list.offset()} + page;
  if ((have < list.total() || have < list.destroyed_total()) && page > 0) {
    pb::ListRequest next;
    next.set_offset(static_cast<uint32_t>(have));
    next.set_limit(wire::kMaxListEntries);
    out->replies.push_back(wire::MakeFrame(session_id_, std::move(next)));
    return Status::OK();
  }
  engine::Frame f;
  f.kind = FrameKind::kList;
  f.messages = std::move(list_);
  f.ids = std::move(destroyed_);
  list_.clear();
  destroyed_.clear();
  out->frames.push_back(std::move(f));
  return Status::OK();
}

Status SessionCodec::Decode(wire::Frame&& frame, Decoded* out) {
  switch (frame.type()) {
    case wire::FrameType::kBeginSessionReply: {
      const auto& m = *frame.As<pb::BeginSessionReply>();
      engine::Frame f;
      f.kind = FrameKind::kHelloReply;
      f.generation = m.server_generation();
      f.window_size = m.window_size();
      f.window_count = m.message_count();
      if (m.has_pending_actions()) out->server_pending = m.pending_actions();
      out->server_kind_update = m.kind() == pb::SYNC_KIND_UPDATE;
      out->frames.push_back(std::move(f));
      return Status::OK();
    }
    case wire::FrameType::kList: return DecodeList(*frame.As<pb::List>(), out);
    case wire::FrameType::kMessageBody: {
      const auto& m = *frame.As<pb::MessageBody>();
      engine::RemoteId id;
      if (!ParseDecimalRemoteId(m.remote_id(), &id)) return BadId("MESSAGE_BODY", m.remote_id());
      fetching_.erase(id);
      engine::Frame f;
      f.kind = FrameKind::kFetched;
      f.ids.push_back(id);
      if (m.result() != pb::FETCH_RESULT_OK) {
        f.missing = true;
      } else {
        engine::RemoteMessage msg;
        msg.id = id;
        auto it = listed_.find(id);
        if (it != listed_.end()) msg.meta = it->second;
        msg.meta.date = m.date();
        msg.meta.state = FromWire(m.state());
        bodies_[id] = std::move(frame.body);
        f.messages.push_back(std::move(msg));
      }
      out->frames.push_back(std::move(f));
      return Status::OK();
    }
    case wire::FrameType::kAction: {
      const auto& m = *frame.As<pb::Action>();
      engine::Frame f;
      f.kind = FrameKind::kAction;
      f.tag = m.seq();
      if (!KindFromWire(m, &f.action)) {
        return Status::Corruption("the server sent an action of an unknown kind");
      }
      if (!ParseDecimalRemoteId(m.remote_id(), &f.action.remote)) {
        return BadId("ACTION", m.remote_id());
      }
      f.action.meta.date = m.date();
      f.action.meta.match_key = MatchKeyFromWire(m.message_id(), m.message_guid());
      if (!frame.body.empty()) bodies_[f.action.remote] = std::move(frame.body);
      ++server_actions_;
      out->frames.push_back(std::move(f));
      return Status::OK();
    }
    case wire::FrameType::kAck: {
      const auto& m = *frame.As<pb::Ack>();
      std::map<uint64_t, engine::RemoteId> assigned;
      for (const pb::AssignedId& a : m.assigned()) {
        engine::RemoteId id;
        if (!ParseDecimalRemoteId(a.remote_id(), &id)) return BadId("ACK", a.remote_id());
        assigned[a.seq()] = id;
      }
      // Only the sequence numbers this session sent, in order: walking
      // first_seq..last_seq itself would never end for last_seq = 2^64-1
      // (the counter wraps), a range the validator lets through.
      for (auto t = tag_of_seq_.lower_bound(m.first_seq());
           t != tag_of_seq_.end() && t->first <= m.last_seq(); ++t) {
        const uint64_t seq = t->first;
        engine::Frame f;
        f.kind = FrameKind::kAck;
        f.tag = t->second;
        auto a = assigned.find(seq);
        if (a != assigned.end()) f.remote = a->second;
        out->frames.push_back(std::move(f));
      }
      return Status::OK();
    }
    case wire::FrameType::kNack: {
      const auto& m = *frame.As<pb::Nack>();
      out->detail = pb::NackReason_Name(m.reason()) + ": " + m.detail().substr(0, 200);
      if (m.reason() == pb::NACK_REASON_STORE_FULL ||
          m.reason() == pb::NACK_REASON_TEMPORARY_FAILURE) {
        out->temporary_failure = true;
        return Status::OK();
      }
      auto t = tag_of_seq_.find(m.seq());
      if (t == tag_of_seq_.end()) return Status::OK();
      engine::Frame f;
      f.kind = FrameKind::kAck;
      f.tag = t->second;
      f.outcome = engine::AckOutcome::kRejected;
      out->frames.push_back(std::move(f));
      return Status::OK();
    }
    case wire::FrameType::kSyncComplete: {
      engine::Frame f;
      f.kind = FrameKind::kSyncComplete;
      out->frames.push_back(std::move(f));
      return Status::OK();
    }
    case wire::FrameType::kEndSession: {
      const auto& m = *frame.As<pb::EndSession>();
      if (m.outcome() != pb::SESSION_OUTCOME_OK) {
        // The answer to our own no-change end is an ABORTED reply.
        if (!no_change_sent_) {
          return Status::Aborted("the server aborted the session", m.detail().substr(0, 200));
        }
      }
      out->ended = true;
      out->end_generation = m.new_generation();
      if (commit_sent_) {
        engine::Frame f;
        f.kind = FrameKind::kCommitAck;
        f.generation = m.new_generation();
        out->frames.push_back(std::move(f));
      }
      return Status::OK();
    }
    case wire::FrameType::kError: {
      const auto& m = *frame.As<pb::Error>();
      return Status::Aborted("server ended the session: " + pb::ErrorCode_Name(m.code()),
                             m.detail().substr(0, 200));
    }
    default: return Status::Corruption("unexpected frame in a session", wire::DescribeFrame(frame));
  }
}

std::string SessionCodec::TakeBody(engine::RemoteId id) {
  auto it = bodies_.find(id);
  if (it == bodies_.end()) return {};
  std::string body = std::move(it->second);
  bodies_.erase(it);
  return body;
}

}  // namespace mobilesync::agent
