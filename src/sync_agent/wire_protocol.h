// The sync protocol's connection level over the RemoteConnection: the
// HELLO/WELCOME handshake, PING/PONG keepalive, the server's SYNC_REQUEST
// ("sync this user now") handed to the scheduler, and connection-level
// ERROR. Frames are decoded by src/wire's incremental FrameDecoder and
// checked by its validator; session frames (non-zero session id) are for
// the sync engine, which is wired in later: until then they are logged and
// dropped.
#ifndef MOBILESYNC_SYNC_AGENT_WIRE_PROTOCOL_H_
#define MOBILESYNC_SYNC_AGENT_WIRE_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sync_agent/remote_connection.h"
#include "wire/frame.h"
#include "wire/frame_decoder.h"

namespace mobilesync::agent {

class WireProtocol : public RemoteProtocol {
 public:
  struct Options {
    std::string agent_name = "mobilesync-agent";
    std::string deployment_token;  // secret: never logged
    uint32_t max_window = 32;
    uint64_t max_message_bytes = 64u << 20;
  };
  using SyncRequestFn = std::function<void(const std::string& user)>;

  WireProtocol(Options options, SyncRequestFn on_sync_request);

  void OnConnected(RemoteConnection* conn) override;
  [[nodiscard]] Status OnBytes(std::string_view data) override;
  void OnKeepalive() override;
  void OnDisconnected(const Status& why) override;

  bool handshake_done() const { return welcomed_; }
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
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_WIRE_PROTOCOL_H_
