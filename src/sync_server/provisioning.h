// The server's two provisioning files (docs/server.md has the full format).
//
// agents_file: which organisation-side agents may connect, and for which
// users. One agent per line:
//   # NAME  key=value...
//   corp-1  cert_cn=agent1.corp.example  token_sha256=<64 hex>  users=alice,bob
//   corp-2  token_sha256=<64 hex>  users=*
// An agent is authenticated when every credential its line names matches:
// cert_cn (the identity of the client certificate, which the TLS layer
// verified against tls_client_ca_file: a DNS subject alternative name, or the
// subject CN when it has none) and/or token_sha256 (SHA-256 of the deployment
// token it sends in HELLO). A line must name at least one. users=* allows
// every user, users=*@example.org every user of that domain; otherwise a
// comma-separated list (patterns and names may be mixed).
//
// devices_file: the device API's bearer tokens. One device per line:
//   # USER  key=value...
//   alice  token_sha256=<64 hex>  address=alice@example.org  window=6
// address: where trigger e-mails go (default: the user name if it contains
// '@'); window: N for that user (default: default_window). A user may have
// several devices (lines); address and window must then agree.
//
// Tokens are stored hashed, so a leaked file does not leak credentials;
// both files are still secret files (mode 0600/0640).
#ifndef MOBILESYNC_SYNC_SERVER_PROVISIONING_H_
#define MOBILESYNC_SYNC_SERVER_PROVISIONING_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mobilesync::server {

struct AgentEntry {
  std::string name;
  std::string cert_cn;       // empty: not required
  std::string token_sha256;  // empty: not required
  bool all_users = false;
  std::set<std::string> users;
  std::vector<std::string> domains;  // "@example.org" from users=*@example.org

  bool Allows(const std::string& user) const;
};

class AgentDirectory {
 public:
  [[nodiscard]] static Status Parse(std::string_view text, const std::string& origin,
                                    AgentDirectory* out);
  [[nodiscard]] static Status Load(const std::string& path, AgentDirectory* out);

  // The first agent whose credentials all match, or nullptr.
  // `cert_names`: the verified client certificate's identities (its DNS
  // subject alternative names or, without any, its subject CN); empty when
  // no verified certificate was presented. cert_cn= matches any of them.
  const AgentEntry* Authenticate(const std::vector<std::string>& cert_names,
                                 std::string_view token) const;
  const std::vector<AgentEntry>& agents() const { return agents_; }

 private:
  std::vector<AgentEntry> agents_;
};

struct DeviceUser {
  std::string user;
  std::string address;   // for trigger e-mails
  uint32_t window = 0;   // 0: the server's default_window
};

class DeviceDirectory {
 public:
  [[nodiscard]] static Status Parse(std::string_view text, const std::string& origin,
                                    DeviceDirectory* out);
  [[nodiscard]] static Status Load(const std::string& path, DeviceDirectory* out);

  // The user whose device holds `token`, or nullptr.
  const DeviceUser* Authenticate(std::string_view token) const;
  const DeviceUser* Find(const std::string& user) const;
  const std::map<std::string, DeviceUser>& users() const { return users_; }

 private:
  std::map<std::string, DeviceUser> users_;
  std::vector<std::pair<std::string, std::string>> tokens_;  // sha256 hex, user
};

// Splits "key=value" words of a provisioning line; exposed for tests.
[[nodiscard]] Status ParseKeyValues(const std::vector<std::string>& words, size_t first,
                                    const std::string& where,
                                    std::map<std::string, std::string>* out);

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_PROVISIONING_H_
