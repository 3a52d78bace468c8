// libFuzzer target: ConfigFile, the `key = value` format of every
// mobilesync configuration file (src/common/config_file.h).
//
// Properties beyond "no crash, no UB": parsing is deterministic; every key
// the text sets (found here with the format's own rules) is known to the
// parsed file, and asking for each of them leaves CheckAllUsed() content;
// every typed getter either fails naming origin:line or yields a value in
// its range; an error of Parse names the origin.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_file.h"

namespace {

using mobilesync::ConfigFile;
using mobilesync::Status;

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

const std::string kOrigin = "fuzz.conf";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The keys of a text that parsed: the documented format, independently.
std::vector<std::string> KeysOf(std::string_view text) {
  std::vector<std::string> keys;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line.front() == '#') continue;
    keys.emplace_back(Trim(line.substr(0, line.find('='))));
  }
  return keys;
}

void CheckError(const Status& s) {
  FUZZ_CHECK(!s.ok());
  FUZZ_CHECK(s.ToString().find(kOrigin + ":") != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ConfigFile f;
  Status s = ConfigFile::Parse(text, kOrigin, &f);
  ConfigFile again;
  Status s2 = ConfigFile::Parse(text, kOrigin, &again);
  FUZZ_CHECK(s.ok() == s2.ok() && s.ToString() == s2.ToString());
  if (!s.ok()) {
    CheckError(s);
    return 0;
  }
  const std::vector<std::string> keys = KeysOf(text);
  for (const std::string& k : keys) {
    FUZZ_CHECK(f.Has(k));
    FUZZ_CHECK(f.Require(k).ok());
    ConfigFile t = again;  // fresh "used" sets for the typed getters
    uint64_t u = 7;
    Status g = t.GetUint(k, 1, 1000, &u);
    if (g.ok())
      FUZZ_CHECK(u >= 1 && u <= 1000);
    else
      CheckError(g);
    uint64_t ms = 7;
    g = t.GetDuration(k, 100, 3600 * 1000, &ms);
    if (g.ok())
      FUZZ_CHECK(ms >= 100 && ms <= 3600 * 1000);
    else
      CheckError(g);
    bool b = false;
    g = t.GetBool(k, &b);
    if (!g.ok()) CheckError(g);
    std::string host;
    uint16_t port = 0;
    g = t.GetHostPort(k, &host, &port);
    if (g.ok())
      FUZZ_CHECK(!host.empty() && port != 0);
    else
      CheckError(g);
    std::string v;
    FUZZ_CHECK(f.GetString(k, &v).ok());
    FUZZ_CHECK(v.size() <= ConfigFile::kMaxLineLength);
  }
  FUZZ_CHECK(f.CheckAllUsed().ok());
  if (!keys.empty()) FUZZ_CHECK(!again.CheckAllUsed().ok());
  FUZZ_CHECK(!f.Has("no such key!"));
  return 0;
}
