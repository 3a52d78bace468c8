// Server: the reference remote mobile mail server as one object. It owns
// the store, the provisioning files, the SMTP sender, the device API and
// the agents' TLS listener, all on one event loop (single-threaded).
#ifndef MOBILESYNC_SYNC_SERVER_SERVER_H_
#define MOBILESYNC_SYNC_SERVER_SERVER_H_

#include <event2/event.h>

#include <memory>

#include "common/status.h"
#include "sync_server/device_api.h"
#include "sync_server/provisioning.h"
#include "sync_server/server_config.h"
#include "common/smtp_client.h"
#include "sync_server/store/sqlite_store.h"

namespace mobilesync::server {

class AgentListener;

class Server {
 public:
  // REQUIRES: base outlives the server.
  Server(event_base* base, ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the store, reads the provisioning files and the trigger secret,
  // starts both listeners. On failure nothing is left listening.
  [[nodiscard]] Status Start();
  // Stops accepting and closes agent connections (SHUTTING_DOWN).
  void Stop();

  uint16_t agent_port() const;
  uint16_t device_api_port() const { return device_api_ ? device_api_->port() : 0; }

 private:
  event_base* base_;
  ServerConfig config_;
  std::unique_ptr<SqliteStore> store_;
  AgentDirectory agents_;
  DeviceDirectory devices_;
  std::unique_ptr<SmtpSender> smtp_;
  std::unique_ptr<AgentListener> listener_;
  std::unique_ptr<DeviceApi> device_api_;
};

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_SERVER_H_
