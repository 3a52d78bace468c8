// libFuzzer target: DecodeIdMap on arbitrary bytes (the agent reads its id
// map cache back from state_dir). A cache that decodes must be within its
// bounds, and encode to bytes that decode to the same cache.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sync_agent/id_map_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mobilesync::agent;
  const std::string in(reinterpret_cast<const char*>(data), size);
  IdMapCache c;
  if (!DecodeIdMap(in, &c).ok()) {
    if (!c.entries.empty() || !c.stamp.empty() || !c.user.empty()) abort();  // nothing half-read
    return 0;
  }
  if (c.stamp.empty() || c.stamp.size() > kMaxIdMapStampBytes ||
      c.entries.size() > kMaxIdMapEntries)
    abort();
  for (const auto& [key, value] : c.entries) {
    if (key.empty() || key.size() > kMaxIdMapKeyBytes || value.empty() ||
        value.size() > kMaxIdMapValueBytes ||
        key.find_first_not_of("0123456789-") != std::string::npos)
      abort();
  }
  IdMapCache back;
  if (!DecodeIdMap(EncodeIdMap(c), &back).ok()) abort();
  if (back.user != c.user || back.stamp != c.stamp || back.read_s != c.read_s ||
      !(back.entries == c.entries))
    abort();
  // A stamp that is not the cache's never makes it usable.
  if (IdMapUsable(c, c.stamp + "x", c.read_s)) abort();
  return 0;
}
