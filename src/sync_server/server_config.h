// The reference server's configuration (/etc/mobilesync/server.conf),
// validated as a whole at start-up.
#ifndef MOBILESYNC_SYNC_SERVER_SERVER_CONFIG_H_
#define MOBILESYNC_SYNC_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace mobilesync::server {

struct ServerConfig {
  // Agent-facing TLS listener.
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 4433;
  std::string tls_cert_file;
  std::string tls_key_file;         // secret
  std::string tls_client_ca_file;   // optional: verify agents' certificates
  std::string agents_file;          // provisioning: which agent serves which users

  // Store.
  std::string database = "/var/lib/mobilesync-server/store.db";
  uint64_t default_window = 500;    // N, per user overridable

  // Device API (HTTP/JSON on loopback).
  std::string device_api_host = "127.0.0.1";
  uint16_t device_api_port = 8080;
  std::string devices_file;         // device bearer tokens per user; secret

  // Trigger e-mail when no agent is connected.
  std::string smtp_host = "127.0.0.1";
  uint16_t smtp_port = 25;
  std::string trigger_secret_file;  // optional; secret shared with the plugin
  std::string trigger_from = "mobilesync-server@localhost";  // envelope + From:

  LogLevel log_level = LogLevel::kInfo;
  bool syslog = false;
};

constexpr const char* kDefaultServerConfig = "/etc/mobilesync/server.conf";

// Loads and validates `path`. On failure the Status names FILE:LINE or the
// offending file.
[[nodiscard]] Status LoadServerConfig(const std::string& path, ServerConfig* out);

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_SERVER_CONFIG_H_
