#include "sync_agent/agent_config.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>

#include "common/config_file.h"
#include "common/secret_file.h"
#include "common/user_name.h"

namespace mobilesync::agent {
namespace {

constexpr uint64_t kHour = 3600 * 1000;

Status CheckReadable(const std::string& origin, const std::string& key,
                     const std::string& path) {
  if (path.empty() || access(path.c_str(), R_OK) == 0) return Status::OK();
  return Status::FromErrno(origin + ": " + key + " " + path, errno);
}

}  // namespace

Status LoadAgentConfig(const std::string& path, AgentConfig* out) {
  ConfigFile f;
  Status s = ConfigFile::Load(path, &f);
  AgentConfig c;
  std::string log_level;
  if (s.ok()) s = f.Require("server");
  if (s.ok()) s = f.Require("tls_ca_file");
  if (s.ok()) s = f.Require("master_user");
  if (s.ok()) s = f.Require("master_password_file");
  if (s.ok()) s = f.GetHostPort("server", &c.server_host, &c.server_port);
  if (s.ok()) s = f.GetString("server_name", &c.server_name);
  if (s.ok()) s = f.GetString("tls_ca_file", &c.tls_ca_file);
  if (s.ok()) s = f.GetString("tls_cert_file", &c.tls_cert_file);
  if (s.ok()) s = f.GetString("tls_key_file", &c.tls_key_file);
  if (s.ok()) s = f.GetString("deployment_token_file", &c.deployment_token_file);
  if (s.ok()) s = f.GetDuration("connect_timeout", 100, 600000, &c.connect_timeout_ms);
  if (s.ok()) s = f.GetDuration("keepalive_interval", 1000, kHour, &c.keepalive_interval_ms);
  if (s.ok()) s = f.GetDuration("reconnect_min", 100, kHour, &c.reconnect_min_ms);
  if (s.ok()) s = f.GetDuration("reconnect_max", 100, 24 * kHour, &c.reconnect_max_ms);
  if (s.ok()) s = f.GetHostPort("imap", &c.imap_host, &c.imap_port);
  if (s.ok()) s = f.GetBool("imap_tls", &c.imap_tls);
  if (s.ok()) s = f.GetString("imap_ca_file", &c.imap_ca_file);
  if (s.ok()) s = f.GetString("master_user", &c.master_user);
  if (s.ok()) s = f.GetString("master_password_file", &c.master_password_file);
  if (s.ok()) s = f.GetString("trigger_secret_file", &c.trigger_secret_file);
  if (s.ok()) s = f.GetDuration("imap_timeout", 1000, kHour, &c.imap_timeout_ms);
  if (s.ok()) s = f.GetDuration("imap_idle_keep", 0, kHour, &c.imap_idle_keep_ms);
  if (s.ok()) s = f.GetUint("imap_max_idle", 0, 10000, &c.imap_max_idle);
  if (s.ok()) s = f.GetString("doveadm_path", &c.doveadm_path);
  if (s.ok()) s = f.GetString("doveadm_config", &c.doveadm_config);
  if (s.ok()) s = f.GetHostPort("submission_host", &c.submission_host, &c.submission_port);
  if (s.ok()) s = f.GetString("sendmail_path", &c.sendmail_path);
  if (s.ok()) s = f.GetString("user", &c.run_as_user);
  if (s.ok()) s = f.GetString("control_socket", &c.control_socket);
  if (s.ok()) s = f.GetString("control_group", &c.control_group);
  if (s.ok()) s = f.GetString("state_dir", &c.state_dir);
  if (s.ok()) s = f.GetDuration("sync_interval", 1000, 24 * kHour, &c.sync_interval_ms);
  if (s.ok()) s = f.GetUint("max_sessions", 1, 1024, &c.max_sessions);
  if (s.ok()) s = f.GetDuration("shutdown_timeout", 0, 600000, &c.shutdown_timeout_ms);
  if (s.ok()) s = f.GetDuration("coalesce_delay", 0, 600000, &c.coalesce_delay_ms);
  if (s.ok()) s = f.GetDuration("retry_min", 100, kHour, &c.retry_min_ms);
  if (s.ok()) s = f.GetDuration("retry_max", 100, 24 * kHour, &c.retry_max_ms);
  if (s.ok()) s = f.GetString("log_level", &log_level);
  if (s.ok()) s = f.GetBool("syslog", &c.syslog);
  if (s.ok()) s = f.CheckAllUsed();
  if (!s.ok()) return s;

  const std::string& o = f.origin();
  if (!log_level.empty()) {
    s = ParseLogLevel(log_level, &c.log_level);
    if (!s.ok()) return Status::InvalidArgument(o + ": log_level", s.message());
  }
  if (c.server_name.empty()) c.server_name = c.server_host;
  s = ValidateUserName(c.master_user);
  if (!s.ok()) return Status::InvalidArgument(o + ": master_user", s.message());
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return Status::InvalidArgument(
        o, "tls_cert_file and tls_key_file must be set together");
  }
  if (c.reconnect_min_ms > c.reconnect_max_ms) {
    return Status::InvalidArgument(o + ": reconnect_min",
                                   "must not be larger than reconnect_max");
  }
  if (c.retry_min_ms > c.retry_max_ms) {
    return Status::InvalidArgument(o + ": retry_min", "must not be larger than retry_max");
  }
  if (c.doveadm_path.empty() || c.doveadm_path[0] != '/') {
    return Status::InvalidArgument(o + ": doveadm_path", "must be an absolute path");
  }
  // Exec'd without a shell, so it must name the program itself.
  if (c.sendmail_path.empty() || c.sendmail_path[0] != '/') {
    return Status::InvalidArgument(o + ": sendmail_path", "must be an absolute path");
  }
  if (!c.run_as_user.empty() && getpwnam(c.run_as_user.c_str()) == nullptr) {
    return Status::InvalidArgument(o + ": user", "no such user '" + c.run_as_user + "'");
  }
  if (!c.control_group.empty() && getgrnam(c.control_group.c_str()) == nullptr) {
    return Status::InvalidArgument(o + ": control_group",
                                   "no such group '" + c.control_group + "'");
  }
  if (c.control_socket.empty() || c.control_socket.size() > 107) {
    return Status::InvalidArgument(o + ": control_socket",
                                   "path must be 1 to 107 bytes long");
  }
  if (c.state_dir.empty() || c.state_dir[0] != '/') {
    return Status::InvalidArgument(o + ": state_dir", "must be an absolute path");
  }
  // Files: readable now, secrets with tight modes. Secrets are checked but
  // not kept in the config object (their owners read them when needed).
  if (s.ok()) s = CheckReadable(o, "tls_ca_file", c.tls_ca_file);
  if (s.ok()) s = CheckReadable(o, "tls_cert_file", c.tls_cert_file);
  if (s.ok()) s = CheckReadable(o, "imap_ca_file", c.imap_ca_file);
  if (s.ok() && !c.tls_key_file.empty()) s = CheckSecretFileMode(c.tls_key_file, true);
  if (s.ok()) s = CheckSecretFileMode(c.master_password_file, true);
  if (s.ok() && !c.deployment_token_file.empty())
    s = CheckSecretFileMode(c.deployment_token_file, true);
  if (s.ok() && !c.trigger_secret_file.empty())
    s = CheckSecretFileMode(c.trigger_secret_file, true);
  if (!s.ok()) return s;
  *out = std::move(c);
  return Status::OK();
}

}  // namespace mobilesync::agent
