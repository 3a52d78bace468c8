// The sync protocol's connection level over the RemoteConnection: the
// HELLO/WELCOME handshake, PING/PONG keepalive, the server's SYNC_REQUEST
// ("sync this user now") handed to the scheduler, and connection-level
// ERROR. Frames are decoded by src/wire's incremental FrameDecoder and
// checked by its validator; session frames (non-zero session id) go to the
// SessionListener that opened the session (a SyncDriver).
#ifndef MOBILESYNC_SYNC_AGENT_WIRE_PROTOCOL_H_
#define MOBILESYNC_SYNC_AGENT_WIRE_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sync_agent/remote_connection.h"
#include "wire/frame.h"
#include "wire/frame_decoder.h"
#include "wire/limits.h"

namespace mobilesync::agent {

// One sync session's end of the connection.
class SessionListener {
 public:
  virtual ~SessionListener() = default;
  // A frame of the session (validated). Called from the loop.
  virtual void OnSessionFrame(wire::Frame&& frame) = 0;
  // The connection is gone: the session is over (nothing was lost: the
  // unacknowledged actions stay queued).
  virtual void OnSessionLost(const Status& why) = 0;
};

class WireProtocol : public RemoteProtocol {
 public:
  struct Options {
    std::string agent_name = "mobilesync-agent";
    std::string deployment_token;  // secret: never logged
    uint32_t max_window = wire::kDefaultWindow;
    uint64_t max_message_bytes = 64u << 20;
    // Offered in HELLO; the server uses the intersection.
    std::vector<std::string> capabilities = {"deliver", "filed-as-sent", "trigger-mail"};
  };
  using SyncRequestFn = std::function<void(const std::string& user)>;

  WireProtocol(Options options, SyncRequestFn on_sync_request);

  void OnConnected(RemoteConnection* conn) override;
  [[nodiscard]] Status OnBytes(std::string_view data) override;
  void OnKeepalive() override;
  void OnDisconnected(const Status& why) override;

  bool handshake_done() const { return welcomed_; }
  // The negotiated window W (actions in flight per session).
  uint32_t window() const { return window_; }
  // A new session id routed to `listener`; 0 without a handshaken connection.
  uint32_t OpenSession(SessionListener* listener);
  // Stops routing `id` (later frames of it are dropped).
  void CloseSession(uint32_t id);
  [[nodiscard]] Status SendSessionFrame(const wire::Frame& frame);
  // Runs `fn` once, when the next handshake completes (at once if it has).
  void WhenReady(std::function<void()> fn);
  size_t open_sessions() const { return sessions_.size(); }
  const std::string& server_name() const { return server_name_; }
  uint64_t pongs() const { return pongs_; }
  uint64_t sync_requests() const { return sync_requests_; }

 private:
  [[nodiscard]] Status Send(const wire::Frame& frame);
  [[nodiscard]] Status Handle(wire::Frame&& frame);

  Options options_;
  SyncRequestFn on_sync_request_;
  RemoteConnection* conn_ = nullptr;
  std::unique_ptr<wire::FrameDecoder> decoder_;
  bool welcomed_ = false;
  std::string server_name_;
  uint64_t next_nonce_ = 1;
  uint64_t outstanding_ping_ = 0;
  uint64_t pongs_ = 0;
  uint64_t sync_requests_ = 0;
  uint32_t window_ = 0;
  uint32_t next_session_id_ = 1;
  std::map<uint32_t, SessionListener*> sessions_;
  std::vector<std::function<void()>> ready_waiters_;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_WIRE_PROTOCOL_H_
