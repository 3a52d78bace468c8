#include "wire/connection_state.h"

#include <string>

#include "wire/limits.h"

namespace mobilesync::wire {

Status ConnectionState::Violation(const Frame& frame, std::string_view rule) const {
  return Status::InvalidArgument(FrameTypeName(frame.type()), rule);
}

const SessionState* ConnectionState::session(uint32_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Status ConnectionState::OnHandshake(Direction dir, const Frame& frame) {
  const bool from_agent = dir == Direction::kAgentToServer;
  if (const auto* hello = frame.As<pb::Hello>()) {
    if (!from_agent) return Violation(frame, "sent by the server");
    if (hello_seen_) return Violation(frame, "second HELLO");
    hello_seen_ = true;
    min_version_ = hello->min_version();
    max_version_ = hello->max_version();
    max_window_ = hello->max_window();
    return Status::OK();
  }
  if (const auto* welcome = frame.As<pb::Welcome>()) {
    if (from_agent) return Violation(frame, "sent by the agent");
    if (handshake_done()) return Violation(frame, "second WELCOME");
    if (!hello_seen_) return Violation(frame, "before HELLO");
    if (welcome->version() < min_version_ || welcome->version() > max_version_) {
      return Violation(frame, "version outside the agent's range");
    }
    if (welcome->window() > max_window_) {
      return Violation(frame, "window larger than the agent offered");
    }
    version_ = welcome->version();
    window_ = welcome->window();
    return Status::OK();
  }
  return Violation(frame, hello_seen_ ? "before WELCOME" : "before HELLO");
}

Status ConnectionState::Observe(Direction dir, const Frame& frame,
                                SessionState::Verdict* verdict) {
  *verdict = SessionState::Verdict::kApply;
  if (closed_) return Violation(frame, "connection closed by ERROR");
  const FrameType type = frame.type();
  // A fatal ERROR may come at any time, also to refuse the handshake.
  if (type == FrameType::kError && frame.session_id == 0) {
    closed_ = true;
    return Status::OK();
  }
  if (!handshake_done() || type == FrameType::kHello || type == FrameType::kWelcome) {
    return OnHandshake(dir, frame);
  }
  switch (FrameTypeScope(type)) {
    case FrameScope::kConnection:
      if (type == FrameType::kSyncRequest && dir == Direction::kAgentToServer) {
        return Violation(frame, "sent by the agent");
      }
      return Status::OK();  // PING, PONG, SYNC_REQUEST
    case FrameScope::kSession:
    case FrameScope::kEither:
      break;
  }
  const uint32_t id = frame.session_id;
  auto it = sessions_.find(id);
  if (type == FrameType::kBeginSession) {
    if (dir != Direction::kAgentToServer) return Violation(frame, "sent by the server");
    if (id <= last_session_id_) return Violation(frame, "session id not new");
    if (sessions_.size() >= kMaxOpenSessions) {
      return Violation(frame, "more than kMaxOpenSessions open");
    }
    SessionState state(window_);
    Status s = state.Observe(dir, frame, verdict);
    if (!s.ok()) return s;
    last_session_id_ = id;
    sessions_.emplace(id, std::move(state));
    return Status::OK();
  }
  if (it == sessions_.end()) {
    if (id > last_session_id_) return Violation(frame, "session id never opened");
    // Ids only grow, so this session has closed: the frame was in flight when
    // it did (e.g. an ACTION crossing the peer's session ERROR). Drop it.
    *verdict = SessionState::Verdict::kIgnore;
    return Status::OK();
  }
  Status s = it->second.Observe(dir, frame, verdict);
  if (s.ok() && it->second.phase() == SessionState::Phase::kClosed) sessions_.erase(it);
  return s;
}

}  // namespace mobilesync::wire
