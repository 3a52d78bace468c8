#include "sync_server/server_config.h"

#include <unistd.h>

#include <cerrno>

#include "common/config_file.h"
#include "common/secret_file.h"
#include "common/smtp_client.h"

namespace mobilesync::server {

Status LoadServerConfig(const std::string& path, ServerConfig* out) {
  ConfigFile f;
  Status s = ConfigFile::Load(path, &f);
  ServerConfig c;
  std::string log_level;
  if (s.ok()) s = f.Require("tls_cert_file");
  if (s.ok()) s = f.Require("tls_key_file");
  if (s.ok()) s = f.Require("agents_file");
  if (s.ok()) s = f.GetHostPort("listen", &c.listen_host, &c.listen_port);
  if (s.ok()) s = f.GetString("tls_cert_file", &c.tls_cert_file);
  if (s.ok()) s = f.GetString("tls_key_file", &c.tls_key_file);
  if (s.ok()) s = f.GetString("tls_client_ca_file", &c.tls_client_ca_file);
  if (s.ok()) s = f.GetString("agents_file", &c.agents_file);
  if (s.ok()) s = f.GetString("database", &c.database);
  if (s.ok()) s = f.GetUint("default_window", 1, 1000000, &c.default_window);
  if (s.ok()) s = f.GetHostPort("device_api_listen", &c.device_api_host, &c.device_api_port);
  if (s.ok()) s = f.GetString("devices_file", &c.devices_file);
  if (s.ok()) s = f.GetHostPort("smtp", &c.smtp_host, &c.smtp_port);
  if (s.ok()) s = f.GetString("trigger_secret_file", &c.trigger_secret_file);
  if (s.ok()) s = f.GetString("trigger_from", &c.trigger_from);
  if (s.ok()) s = f.GetString("log_level", &log_level);
  if (s.ok()) s = f.GetBool("syslog", &c.syslog);
  if (s.ok()) s = f.CheckAllUsed();
  if (!s.ok()) return s;

  const std::string& o = f.origin();
  if (!log_level.empty()) {
    s = ParseLogLevel(log_level, &c.log_level);
    if (!s.ok()) return Status::InvalidArgument(o + ": log_level", s.message());
  }
  // Goes into MAIL FROM and the From: header of every trigger e-mail: a
  // CR, space or '>' there would inject SMTP commands or header fields.
  if (!IsPlainAddress(c.trigger_from)) {
    return Status::InvalidArgument(o + ": trigger_from", "must be a plain address (user@domain)");
  }
  if (c.database.empty() || c.database[0] != '/') {
    return Status::InvalidArgument(o + ": database", "must be an absolute path");
  }
  for (const std::string* p : {&c.tls_cert_file, &c.tls_client_ca_file}) {
    if (!p->empty() && access(p->c_str(), R_OK) != 0) {
      return Status::FromErrno(o + ": cannot read " + *p, errno);
    }
  }
  s = CheckSecretFileMode(c.tls_key_file, true);
  if (s.ok()) s = CheckSecretFileMode(c.agents_file, true);
  if (s.ok() && !c.devices_file.empty()) s = CheckSecretFileMode(c.devices_file, true);
  if (s.ok() && !c.trigger_secret_file.empty())
    s = CheckSecretFileMode(c.trigger_secret_file, true);
  if (!s.ok()) return s;
  *out = std::move(c);
  return Status::OK();
}

}  // namespace mobilesync::server
