#include "sync_server/server.h"

#include "common/log.h"
#include "common/secret_file.h"
#include "sync_server/agent_listener.h"
#include "sync_server/trigger.h"

namespace mobilesync::server {

Server::Server(event_base* base, ServerConfig config) : base_(base), config_(std::move(config)) {}

// Members go in reverse order: device API, listener (closes connections),
// SMTP sender, store.
Server::~Server() = default;

Status Server::Start() {
  Status s = AgentDirectory::Load(config_.agents_file, &agents_);
  if (s.ok() && !config_.devices_file.empty()) s = DeviceDirectory::Load(config_.devices_file, &devices_);
  std::string trigger_secret;
  if (s.ok() && !config_.trigger_secret_file.empty()) {
    s = ReadSecretFile(config_.trigger_secret_file, 4096, &trigger_secret);
    if (s.ok() && trigger_secret.size() < kMinTriggerSecretBytes) {
      s = Status::InvalidArgument(config_.trigger_secret_file,
                                  "trigger secret must be at least 32 bytes");
    }
  }
  if (s.ok()) s = SqliteStore::Open(config_.database, &store_);
  // Every device's user exists in the store with its window (N), in one
  // batch: one commit, not one per user (10,000 users took 20-50 s one by
  // one on a loaded 2-core machine, bench/agent_bench).
  const bool batch = s.ok() && !devices_.users().empty();
  if (batch) s = store_->BeginBatch();
  const bool in_batch = batch && s.ok();
  for (const auto& [user, du] : devices_.users()) {
    if (!s.ok()) break;
    s = store_->EnsureUser(user, du.window != 0 ? du.window
                                                : static_cast<uint32_t>(config_.default_window));
  }
  if (in_batch) {
    Status end = store_->EndBatch();
    if (s.ok()) s = end;
  }
  if (!s.ok()) return s;
  smtp_ = std::make_unique<SmtpSender>(base_, config_.smtp_host, config_.smtp_port);
  AgentListenerOptions lo;
  lo.host = config_.listen_host;
  lo.port = config_.listen_port;
  lo.cert_file = config_.tls_cert_file;
  lo.key_file = config_.tls_key_file;
  lo.client_ca_file = config_.tls_client_ca_file;
  lo.default_window = static_cast<uint32_t>(config_.default_window);
  listener_ = std::make_unique<AgentListener>(base_, store_.get(), &agents_, &devices_, lo);
  s = listener_->Start();
  if (!s.ok()) {
    listener_.reset();
    return s;
  }
  DeviceApiOptions o;
  o.host = config_.device_api_host;
  o.port = config_.device_api_port;
  o.trigger_secret = trigger_secret;
  o.trigger_from = config_.trigger_from;
  device_api_ = std::make_unique<DeviceApi>(base_, store_.get(), &devices_, smtp_.get(),
                                            listener_.get(), o);
  s = device_api_->Start();
  if (!s.ok()) {
    device_api_.reset();
    listener_.reset();
  }
  return s;
}

void Server::Stop() {
  device_api_.reset();
  if (listener_) listener_->Stop();
}

uint16_t Server::agent_port() const { return listener_ ? listener_->port() : 0; }

}  // namespace mobilesync::server
