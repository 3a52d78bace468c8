// libFuzzer target: LoadAgentConfig (src/sync_agent/agent_config.h), the
// agent's whole configuration as the administrator writes it.
//
// Properties beyond "no crash, no UB": a failure says why, naming the file;
// a configuration that loads keeps the invariants the agent relies on
// (required settings present, valid master user, ordered back-off bounds,
// absolute paths, a control socket path that fits sockaddr_un).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/user_name.h"
#include "config_fuzz_util.h"
#include "sync_agent/agent_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 16)) return 0;  // the 1 MiB limit is a unit test's job
  using namespace mobilesync;
  const std::string path = fuzz::WriteInput({reinterpret_cast<const char*>(data), size});
  agent::AgentConfig c;
  Status s = agent::LoadAgentConfig(path, &c);
  if (!s.ok()) {
    FUZZ_CHECK(!s.ToString().empty());
    FUZZ_CHECK(c.server_host.empty() && c.master_user.empty());  // untouched
    return 0;
  }
  FUZZ_CHECK(!c.server_host.empty() && c.server_port != 0);
  FUZZ_CHECK(!c.server_name.empty());
  FUZZ_CHECK(!c.tls_ca_file.empty() && !c.master_password_file.empty());
  FUZZ_CHECK(ValidateUserName(c.master_user).ok());
  FUZZ_CHECK(c.tls_cert_file.empty() == c.tls_key_file.empty());
  FUZZ_CHECK(c.reconnect_min_ms <= c.reconnect_max_ms);
  FUZZ_CHECK(c.retry_min_ms <= c.retry_max_ms);
  FUZZ_CHECK(c.max_sessions >= 1 && c.max_sessions <= 1024);
  FUZZ_CHECK(!c.doveadm_path.empty() && c.doveadm_path[0] == '/');
  FUZZ_CHECK(!c.sendmail_path.empty() && c.sendmail_path[0] == '/');
  FUZZ_CHECK(!c.state_dir.empty() && c.state_dir[0] == '/');
  FUZZ_CHECK(!c.control_socket.empty() && c.control_socket.size() <= 107);
  FUZZ_CHECK(c.submission_host.empty() == (c.submission_port == 0));
  return 0;
}
