// libFuzzer target: the server's provisioning files (src/sync_server/
// provisioning.h): agents_file (which agent may serve which users) and
// devices_file (the device API's bearer tokens).
//
// Input: a file's text, then optionally a line "--" followed by probes:
// the first line a token, the others certificate names and user names.
// The text is parsed as both files. Properties beyond "no crash, no UB":
//   * every agent names at least one credential, a hex SHA-256 if a token;
//   * Authenticate only returns an agent whose every credential matches;
//   * Allows: users=* allows everyone, a listed user is allowed, anyone
//     else only through a users=*@domain pattern that is their domain;
//   * a device user is found under its name; Authenticate never returns a
//     user for an empty token.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/user_name.h"
#include "sync_server/crypto_util.h"
#include "sync_server/provisioning.h"

namespace {

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

using namespace mobilesync;
using namespace mobilesync::server;

std::vector<std::string> Lines(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    out.emplace_back(s.substr(0, nl));
    s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view text = in, probes;
  if (size_t sep = in.find("\n--\n"); sep != std::string_view::npos) {
    text = in.substr(0, sep + 1);
    probes = in.substr(sep + 4);
  }
  std::vector<std::string> probe = Lines(probes);
  std::string token = probe.empty() ? std::string() : probe[0];
  std::vector<std::string> names(probe.begin() + (probe.empty() ? 0 : 1), probe.end());
  names.push_back("alice@example.org");

  AgentDirectory agents;
  Status s = AgentDirectory::Parse(text, "agents", &agents);
  if (!s.ok()) {
    FUZZ_CHECK(s.ToString().find("agents") != std::string::npos);
  } else {
    for (const AgentEntry& e : agents.agents()) {
      FUZZ_CHECK(!e.name.empty());
      FUZZ_CHECK(!e.cert_cn.empty() || !e.token_sha256.empty());
      FUZZ_CHECK(e.token_sha256.empty() || IsLowerHex(e.token_sha256, 64));
      for (const std::string& n : names) {
        // (User names are validated before: wire/message_validator.cc.)
        if (e.all_users || e.users.count(n) != 0) FUZZ_CHECK(e.Allows(n));
        if (e.Allows(n) && !e.all_users && e.users.count(n) == 0) {
          // Only by domain: the name's part after its last '@' is one.
          const size_t at = n.rfind('@');
          FUZZ_CHECK(at != std::string::npos && at > 0);
          bool listed = false;
          for (const std::string& d : e.domains) listed = listed || d == n.substr(at);
          FUZZ_CHECK(listed);
        }
      }
      for (const std::string& u : e.users) FUZZ_CHECK(ValidateUserName(u).ok());
      for (const std::string& d : e.domains)
        FUZZ_CHECK(d.size() > 1 && d[0] == '@' && d.find('@', 1) == std::string::npos);
    }
    for (size_t k = 0; k <= names.size(); ++k) {
      // No certificate, then each name alone as the certificate.
      std::vector<std::string> cert;
      if (k < names.size()) cert.push_back(names[k]);
      for (std::string_view t : {std::string_view(token), std::string_view()}) {
        const AgentEntry* e = agents.Authenticate(cert, t);
        if (e == nullptr) continue;
        if (!e->cert_cn.empty()) FUZZ_CHECK(!cert.empty() && cert[0] == e->cert_cn);
        if (!e->token_sha256.empty()) FUZZ_CHECK(!t.empty() && Sha256Hex(t) == e->token_sha256);
      }
    }
  }

  DeviceDirectory devices;
  s = DeviceDirectory::Parse(text, "devices", &devices);
  if (!s.ok()) {
    FUZZ_CHECK(s.ToString().find("devices") != std::string::npos);
  } else {
    for (const auto& [name, u] : devices.users()) {
      FUZZ_CHECK(name == u.user && ValidateUserName(name).ok());
      FUZZ_CHECK(devices.Find(name) == &u);
    }
    FUZZ_CHECK(devices.Authenticate("") == nullptr);
    if (const DeviceUser* u = devices.Authenticate(token)) FUZZ_CHECK(devices.Find(u->user) == u);
  }
  return 0;
}
