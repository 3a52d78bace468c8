// The agent's configuration (/etc/mobilesync/agent.conf), validated as a
// whole at start-up and on SIGHUP. See conf.d/mobilesync-agent.conf for the
// documented file.
#ifndef MOBILESYNC_SYNC_AGENT_AGENT_CONFIG_H_
#define MOBILESYNC_SYNC_AGENT_AGENT_CONFIG_H_

#include <cstdint>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace mobilesync::agent {

struct AgentConfig {
  // Remote mobile mail server (outbound TLS).
  std::string server_host;
  uint16_t server_port = 0;
  std::string server_name;  // TLS host name to verify; default server_host
  std::string tls_ca_file;
  std::string tls_cert_file;  // optional client certificate
  std::string tls_key_file;
  std::string deployment_token_file;  // optional; secret
  uint64_t connect_timeout_ms = 10000;
  uint64_t keepalive_interval_ms = 30000;
  uint64_t reconnect_min_ms = 1000;
  uint64_t reconnect_max_ms = 300000;

  // Local Dovecot.
  std::string imap_host = "127.0.0.1";
  uint16_t imap_port = 143;
  bool imap_tls = false;
  std::string imap_ca_file;
  std::string master_user;
  std::string master_password_file;  // secret
  std::string trigger_secret_file;   // optional; secret shared with server
  uint64_t imap_timeout_ms = 60000;
  uint64_t imap_idle_keep_ms = 30000;   // pooled connection kept this long
  uint64_t imap_max_idle = 64;          // pooled connections kept at most
  std::string doveadm_path = "/usr/bin/doveadm";
  std::string doveadm_config;           // optional: doveadm -c FILE
  // Submitting mail composed on the device (like Dovecot's settings of the
  // same names): SMTP to submission_host when set, else sendmail_path.
  std::string submission_host;  // empty: use sendmail_path
  uint16_t submission_port = 0;
  std::string sendmail_path = "/usr/sbin/sendmail";

  // Local control.
  std::string control_socket = "/run/mobilesync/agent.sock";
  std::string control_group;  // optional group allowed besides root
  std::string state_dir = "/var/lib/mobilesync";
  std::string run_as_user;  // `user`: drop root privileges to this user

  // Scheduling.
  uint64_t sync_interval_ms = 300000;
  uint64_t max_sessions = 16;
  uint64_t shutdown_timeout_ms = 10000;
  uint64_t coalesce_delay_ms = 10;
  uint64_t retry_min_ms = 5000;
  uint64_t retry_max_ms = 600000;

  LogLevel log_level = LogLevel::kInfo;
  bool syslog = false;
};

constexpr const char* kDefaultAgentConfig = "/etc/mobilesync/agent.conf";

// Loads and validates `path`: types and ranges of every value, required
// settings, unknown keys, and the modes of secret files. On failure the
// Status names FILE:LINE or the offending file.
[[nodiscard]] Status LoadAgentConfig(const std::string& path, AgentConfig* out);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_AGENT_CONFIG_H_
