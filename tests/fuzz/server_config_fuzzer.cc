// libFuzzer target: LoadServerConfig (src/sync_server/server_config.h), the
// reference server's whole configuration.
//
// Properties beyond "no crash, no UB": a failure says why; a configuration
// that loads has its required files, an absolute database path, ports, and
// a trigger sender that is a plain address (it goes into MAIL FROM and the
// From: header of every trigger e-mail: a CR there would inject SMTP).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/smtp_client.h"
#include "config_fuzz_util.h"
#include "sync_server/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 16)) return 0;  // the 1 MiB limit is a unit test's job
  using namespace mobilesync;
  const std::string path = fuzz::WriteInput({reinterpret_cast<const char*>(data), size});
  server::ServerConfig c;
  Status s = server::LoadServerConfig(path, &c);
  if (!s.ok()) {
    FUZZ_CHECK(!s.ToString().empty());
    FUZZ_CHECK(c.tls_cert_file.empty() && c.agents_file.empty());  // untouched
    return 0;
  }
  FUZZ_CHECK(!c.tls_cert_file.empty() && !c.tls_key_file.empty() && !c.agents_file.empty());
  FUZZ_CHECK(!c.listen_host.empty() && c.listen_port != 0);
  FUZZ_CHECK(!c.device_api_host.empty() && c.device_api_port != 0);
  FUZZ_CHECK(!c.smtp_host.empty() && c.smtp_port != 0);
  FUZZ_CHECK(!c.database.empty() && c.database[0] == '/');
  FUZZ_CHECK(c.default_window >= 1 && c.default_window <= 1000000);
  FUZZ_CHECK(IsPlainAddress(c.trigger_from));
  return 0;
}
