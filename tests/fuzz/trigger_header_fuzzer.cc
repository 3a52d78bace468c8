// libFuzzer target: ParseTriggerHeader and VerifyTrigger on arbitrary
// bytes. Nothing may crash, and a random header never verifies.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "plugin/trigger_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  mobilesync::plugin::TriggerHeader h;
  if (mobilesync::plugin::ParseTriggerHeader(in, &h).ok()) {
    static const std::string kSecret = "fuzz-secret-fuzz-secret-fuzz-secret!";
    auto v = mobilesync::plugin::VerifyTrigger(h, kSecret, h.user, h.ts, 300);
    // Only a header carrying the right MAC may verify.
    if (v == mobilesync::plugin::TriggerVerdict::kValid &&
        mobilesync::plugin::ComputeTriggerMac(kSecret, h.user, h.ts_text, h.nonce) != h.mac_hex)
      abort();
  }
  return 0;
}
