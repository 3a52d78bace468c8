// libFuzzer target: ParseQuickToken on arbitrary bytes (the agent reads the
// token back from its registry). A token that parses must be within its
// bounds and make, with MakeQuickToken, a token that parses to the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sync_agent/quick_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mobilesync::agent::QuickToken;
  const std::string in(reinterpret_cast<const char*>(data), size);
  const int64_t now = 1800000000;
  QuickToken t;
  std::string why;
  if (!mobilesync::agent::ParseQuickToken(in, now, &t, &why)) {
    if (why.empty()) abort();  // a refusal always says why
    return 0;
  }
  if (in.size() > mobilesync::agent::kMaxQuickTokenBytes || t.generation == 0 ||
      t.window_size == 0 || t.print.empty() ||
      now - t.made_s > mobilesync::agent::kQuickTokenMaxAgeS) {
    abort();
  }
  const std::string again =
      mobilesync::agent::MakeQuickToken(t.generation, t.window_size, t.print, t.made_s);
  QuickToken back;
  // Re-encoding may lengthen the print past the bound; otherwise it must
  // read back the same.
  if (again.size() <= mobilesync::agent::kMaxQuickTokenBytes) {
    if (!mobilesync::agent::ParseQuickToken(again, now, &back, &why)) abort();
    if (back.generation != t.generation || back.window_size != t.window_size ||
        back.print != t.print || back.made_s != t.made_s) {
      abort();
    }
  }
  return 0;
}
