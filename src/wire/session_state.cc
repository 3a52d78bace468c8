#include "wire/session_state.h"

#include <string>

namespace mobilesync::wire {

namespace {

constexpr Direction Opposite(Direction dir) {
  return dir == Direction::kAgentToServer ? Direction::kServerToAgent
                                          : Direction::kAgentToServer;
}

// Actions whose ACK must carry the remote id the server assigned: the ones
// the agent sends to create a message remotely.
bool NeedsAssignedId(Direction dir, pb::ActionKind kind) {
  return dir == Direction::kAgentToServer &&
         (kind == pb::ACTION_KIND_INSERT || kind == pb::ACTION_KIND_FILED_AS_SENT);
}

}  // namespace

SessionState::SessionState(uint32_t window)
    : window_(window < 1 ? 1 : (window > kMaxWindow ? kMaxWindow : window)) {}

std::string_view SessionState::PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kIdle: return "IDLE";
    case Phase::kOpening: return "OPENING";
    case Phase::kAgentPhase: return "AGENT_PHASE";
    case Phase::kServerPhase: return "SERVER_PHASE";
    case Phase::kPullPhase: return "PULL_PHASE";
    case Phase::kEnding: return "ENDING";
    case Phase::kClosed: return "CLOSED";
  }
  return "?";
}

Status SessionState::Violation(FrameType type, std::string_view rule) const {
  return Status::InvalidArgument(
      FrameTypeName(type), std::string(rule) + " (phase " + std::string(PhaseName(phase_)) + ")");
}

Status SessionState::Violation(const Frame& frame, std::string_view rule) const {
  return Violation(frame.type(), rule);
}

Status SessionState::Observe(Direction dir, const Frame& frame, Verdict* verdict) {
  *verdict = Verdict::kApply;
  const bool from_agent = dir == Direction::kAgentToServer;
  const FrameType type = frame.type();
  if (FrameTypeScope(type) == FrameScope::kConnection) {
    return Violation(frame, "not a session frame");
  }
  if (phase_ == Phase::kClosed) return Violation(frame, "session is closed");
  // After the agent aborted, the server's frames already on their way are
  // harmless; only its END_SESSION (or ERROR) matters.
  if (phase_ == Phase::kEnding && !from_agent && type != FrameType::kEndSession &&
      type != FrameType::kError) {
    if (agent_ended_ok_) return Violation(frame, "frame after END_SESSION");
    *verdict = Verdict::kIgnore;
    return Status::OK();
  }
  if (phase_ == Phase::kEnding && from_agent && type != FrameType::kError) {
    return Violation(frame, "agent frame after its END_SESSION");
  }
  const bool open = phase_ == Phase::kAgentPhase || phase_ == Phase::kServerPhase ||
                    phase_ == Phase::kPullPhase;

  switch (type) {
    case FrameType::kError:
      if (phase_ == Phase::kIdle) return Violation(frame, "ERROR before BEGIN_SESSION");
      phase_ = Phase::kClosed;
      return Status::OK();

    case FrameType::kBeginSession:
      if (!from_agent) return Violation(frame, "sent by the server");
      if (phase_ != Phase::kIdle) return Violation(frame, "session already begun");
      phase_ = Phase::kOpening;
      return Status::OK();

    case FrameType::kBeginSessionReply:
      if (from_agent) return Violation(frame, "sent by the agent");
      if (phase_ != Phase::kOpening) return Violation(frame, "not after BEGIN_SESSION");
      kind_ = frame.As<pb::BeginSessionReply>()->kind();
      phase_ = Phase::kAgentPhase;
      return Status::OK();

    case FrameType::kListRequest:
      if (!from_agent) return Violation(frame, "sent by the server");
      if (phase_ != Phase::kAgentPhase && phase_ != Phase::kPullPhase) {
        return Violation(frame, "outside the agent's phases");
      }
      if (list_outstanding_) return Violation(frame, "a LIST_REQUEST is outstanding");
      list_outstanding_ = true;
      return Status::OK();

    case FrameType::kList:
      if (from_agent) return Violation(frame, "sent by the agent");
      if (!open || !list_outstanding_) return Violation(frame, "no LIST_REQUEST outstanding");
      list_outstanding_ = false;
      return Status::OK();

    case FrameType::kFetch: {
      if (!from_agent) return Violation(frame, "sent by the server");
      if (phase_ != Phase::kAgentPhase && phase_ != Phase::kPullPhase) {
        return Violation(frame, "outside the agent's phases");
      }
      const uint32_t id = frame.As<pb::Fetch>()->request_id();
      if (fetches_.count(id) != 0) return Violation(frame, "request_id already outstanding");
      if (fetches_.size() >= window_) return Violation(frame, "more than W fetches outstanding");
      fetches_.insert(id);
      return Status::OK();
    }

    case FrameType::kMessageBody: {
      if (from_agent) return Violation(frame, "sent by the agent");
      if (!open || fetches_.erase(frame.As<pb::MessageBody>()->request_id()) == 0) {
        return Violation(frame, "no FETCH outstanding with this request_id");
      }
      return Status::OK();
    }

    case FrameType::kAction:
      return OnAction(dir, *frame.As<pb::Action>(), verdict);
    case FrameType::kAck:
      if (!open && phase_ != Phase::kEnding) return Violation(frame, "session not open");
      return OnAck(dir, *frame.As<pb::Ack>(), verdict);
    case FrameType::kNack:
      if (!open && phase_ != Phase::kEnding) return Violation(frame, "session not open");
      return OnNack(dir, *frame.As<pb::Nack>(), verdict);

    case FrameType::kSwap: {
      if (!from_agent) return Violation(frame, "sent by the server");
      if (kind_ != pb::SYNC_KIND_UPDATE) return Violation(frame, "SWAP in an initial sync");
      if (phase_ != Phase::kAgentPhase) return Violation(frame, "second SWAP or wrong phase");
      if (frame.As<pb::SwapRequest>()->last_seq() != stream(dir).highest_seq) {
        return Violation(frame, "last_seq is not the last action sent");
      }
      phase_ = Phase::kServerPhase;
      return Status::OK();
    }

    case FrameType::kSyncComplete: {
      if (from_agent) return Violation(frame, "sent by the agent");
      if (phase_ != Phase::kServerPhase) return Violation(frame, "not after SWAP");
      const Stream& mine = stream(dir);
      if (frame.As<pb::SyncComplete>()->last_seq() != mine.highest_seq) {
        return Violation(frame, "last_seq is not the last action sent");
      }
      // The server finishes its phase only when every action of both sides
      // has been answered.
      if (mine.acked_through != mine.highest_seq ||
          stream(Direction::kAgentToServer).acked_through !=
              stream(Direction::kAgentToServer).highest_seq) {
        return Violation(frame, "actions still unacknowledged");
      }
      phase_ = Phase::kPullPhase;
      return Status::OK();
    }

    case FrameType::kEndSession:
      return OnEndSession(dir, *frame.As<pb::EndSession>());

    default:
      return Violation(frame, "unexpected frame type");
  }
}

Status SessionState::OnAction(Direction dir, const pb::Action& m, Verdict* verdict) {
  const bool from_agent = dir == Direction::kAgentToServer;
  if (from_agent && phase_ != Phase::kAgentPhase && phase_ != Phase::kPullPhase) {
    return Violation(FrameType::kAction, "agent action outside the agent's phases");
  }
  if (!from_agent && phase_ != Phase::kServerPhase) {
    return Violation(FrameType::kAction, "server action before SWAP or after SYNC_COMPLETE");
  }
  if (m.kind() == pb::ACTION_KIND_DELIVER && from_agent) {
    return Violation(FrameType::kAction, "DELIVER from the agent");
  }
  if ((m.kind() == pb::ACTION_KIND_INSERT || m.kind() == pb::ACTION_KIND_FILED_AS_SENT) &&
      (from_agent ? m.insert_key().empty() : m.remote_id().empty())) {
    return Violation(FrameType::kAction,
                     from_agent ? "agent insert without insert_key"
                                : "server insert without remote_id");
  }
  Stream& s = stream(dir);
  if (m.seq() <= s.highest_seq) {
    // A re-send: the receiver acknowledges it again and applies nothing.
    *verdict = Verdict::kDuplicate;
    return Status::OK();
  }
  if (m.seq() != s.highest_seq + 1) return Violation(FrameType::kAction, "sequence gap");
  if (s.highest_seq - s.acked_through >= window_) {
    return Violation(FrameType::kAction, "more than W actions in flight");
  }
  s.highest_seq = m.seq();
  s.in_flight.push_back(m.kind());
  return Status::OK();
}

Status SessionState::OnAck(Direction dir, const pb::Ack& m, Verdict* verdict) {
  // An ACK from one side covers the actions of the other.
  const Direction acked_dir = Opposite(dir);
  Stream& s = stream(acked_dir);
  if (m.last_seq() <= s.acked_through) {
    // The answer to a duplicate ACTION, or a re-sent ACK: nothing new.
    *verdict = Verdict::kDuplicate;
    return Status::OK();
  }
  if (m.first_seq() != s.acked_through + 1) {
    return Violation(FrameType::kAck, "acks out of order (first_seq is not the next unacked)");
  }
  if (m.last_seq() > s.highest_seq) return Violation(FrameType::kAck, "acks an unsent seq");
  // Every seq that needs a remote id has one, and only those.
  size_t needed = 0;
  for (uint64_t seq = m.first_seq(); seq <= m.last_seq(); ++seq) {
    const pb::ActionKind kind = s.in_flight[seq - m.first_seq()];
    if (!NeedsAssignedId(acked_dir, kind)) continue;
    ++needed;
    bool found = false;
    for (const pb::AssignedId& a : m.assigned()) found = found || a.seq() == seq;
    if (!found) return Violation(FrameType::kAck, "insert acked without its remote id");
  }
  if (needed != static_cast<size_t>(m.assigned_size())) {
    return Violation(FrameType::kAck, "remote id assigned to an action that is no insert");
  }
  const uint64_t count = m.last_seq() - m.first_seq() + 1;
  s.in_flight.erase(s.in_flight.begin(), s.in_flight.begin() + static_cast<long>(count));
  s.acked_through = m.last_seq();
  return Status::OK();
}

Status SessionState::OnNack(Direction dir, const pb::Nack& m, Verdict* verdict) {
  Stream& s = stream(Opposite(dir));
  if (m.seq() <= s.acked_through) {
    *verdict = Verdict::kDuplicate;
    return Status::OK();
  }
  if (m.seq() != s.acked_through + 1) {
    return Violation(FrameType::kNack, "nacks out of order (seq is not the next unacked)");
  }
  if (m.seq() > s.highest_seq) return Violation(FrameType::kNack, "nacks an unsent seq");
  s.in_flight.pop_front();
  s.acked_through = m.seq();
  return Status::OK();
}

Status SessionState::OnEndSession(Direction dir, const pb::EndSession& m) {
  const bool ok = m.outcome() == pb::SESSION_OUTCOME_OK;
  if (dir == Direction::kAgentToServer) {
    if (phase_ == Phase::kIdle || phase_ == Phase::kEnding) {
      return Violation(FrameType::kEndSession, "no session to end");
    }
    if (m.new_generation() != 0) {
      return Violation(FrameType::kEndSession, "the agent sets no generation");
    }
    if (ok) {
      if (phase_ == Phase::kOpening || phase_ == Phase::kServerPhase ||
          (kind_ == pb::SYNC_KIND_UPDATE && phase_ != Phase::kPullPhase)) {
        return Violation(FrameType::kEndSession, "OK before the sync flow finished");
      }
      if (in_flight(Direction::kAgentToServer) != 0 || !fetches_.empty() || list_outstanding_) {
        return Violation(FrameType::kEndSession, "OK with requests still unanswered");
      }
    }
    agent_ended_ok_ = ok;
    phase_ = Phase::kEnding;
    return Status::OK();
  }
  if (phase_ != Phase::kEnding) {
    return Violation(FrameType::kEndSession, "server ends before the agent did");
  }
  if (ok && !agent_ended_ok_) {
    return Violation(FrameType::kEndSession, "OK reply to an aborted session");
  }
  if (ok && m.new_generation() == 0) {
    return Violation(FrameType::kEndSession, "OK without new_generation");
  }
  phase_ = Phase::kClosed;
  return Status::OK();
}

}  // namespace mobilesync::wire
