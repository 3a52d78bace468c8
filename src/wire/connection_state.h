// Per-connection order checker (docs/protocol.md, sections 3 and 6.1).
//
// Owns one SessionState per open session and routes session frames to it.
// Itself it checks the handshake (HELLO first from the agent, WELCOME first
// from the server, each once, WELCOME consistent with HELLO), session ids
// (chosen by the agent, increasing, never reused, at most kMaxOpenSessions
// open) and that nothing follows a fatal ERROR on session 0. Like
// SessionState it sees frames in both directions and wants them validated.
#ifndef MOBILESYNC_WIRE_CONNECTION_STATE_H_
#define MOBILESYNC_WIRE_CONNECTION_STATE_H_

#include <cstdint>
#include <map>

#include "common/status.h"
#include "wire/frame.h"
#include "wire/session_state.h"

namespace mobilesync::wire {

class ConnectionState {
 public:
  ConnectionState() = default;
  ConnectionState(const ConnectionState&) = delete;
  ConnectionState& operator=(const ConnectionState&) = delete;

  // Checks that `frame` may come next on the connection, travelling in `dir`,
  // and advances. On failure (InvalidArgument) nothing changes; the caller
  // answers with ERROR (on the frame's session id if the session checker
  // refused it, else on session 0) as docs/protocol.md section 10 says.
  [[nodiscard]] Status Observe(Direction dir, const Frame& frame,
                               SessionState::Verdict* verdict);

  bool handshake_done() const { return window_ != 0; }
  bool closed() const { return closed_; }
  // The negotiated window W (0 before WELCOME) and protocol version.
  uint32_t window() const { return window_; }
  uint32_t version() const { return version_; }
  size_t open_sessions() const { return sessions_.size(); }
  // The state of an open session, or nullptr.
  const SessionState* session(uint32_t id) const;

 private:
  Status Violation(const Frame& frame, std::string_view rule) const;
  Status OnHandshake(Direction dir, const Frame& frame);

  bool hello_seen_ = false;
  bool closed_ = false;
  uint32_t min_version_ = 0;
  uint32_t max_version_ = 0;
  uint32_t max_window_ = 0;
  uint32_t window_ = 0;
  uint32_t version_ = 0;
  uint32_t last_session_id_ = 0;
  std::map<uint32_t, SessionState> sessions_;
};

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_CONNECTION_STATE_H_
