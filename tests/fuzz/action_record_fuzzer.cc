// libFuzzer target: ParseActionValue and ParseActionKeyId on arbitrary
// bytes. A value that parses must format back to a value that parses to the
// same record (the agent relies on that when it rewrites nothing but reads
// what the plugin wrote).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "plugin/action_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  mobilesync::plugin::ActionRecord r;
  if (mobilesync::plugin::ParseActionValue(in, &r).ok()) {
    std::string again;
    if (!mobilesync::plugin::FormatActionValue(r, &again).ok()) {
      // Parsed records are valid, but re-encoding may grow past the limit
      // (unknown fields are dropped, escapes may lengthen): only allowed
      // when the encoding really is too long.
      std::string enc = mobilesync::plugin::PercentEncode(r.box) +
                        mobilesync::plugin::PercentEncode(r.src_box) +
                        mobilesync::plugin::PercentEncode(r.guid) +
                        mobilesync::plugin::PercentEncode(r.reason);
      if (enc.size() < mobilesync::plugin::kMaxActionValueLength / 2) abort();
    } else {
      mobilesync::plugin::ActionRecord back;
      if (!mobilesync::plugin::ParseActionValue(again, &back).ok() || !(back == r)) abort();
    }
  }
  uint64_t ts;
  uint32_t pid, counter;
  if (mobilesync::plugin::ParseActionKeyId(in, &ts, &pid, &counter).ok()) {
    if (mobilesync::plugin::FormatActionKeyId(ts, pid, counter) != in) abort();
  }
  std::string dec;
  if (mobilesync::plugin::PercentDecode(in, &dec)) {
    std::string back;
    if (!mobilesync::plugin::PercentDecode(mobilesync::plugin::PercentEncode(dec), &back) ||
        back != dec)
      abort();
  }
  return 0;
}
