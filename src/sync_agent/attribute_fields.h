// The agent's reading of the `v1 name=value ...` attribute values it writes
// itself (docs/attributes.md: map, generation, quick) and of its quick
// token. Bounded: canonical decimal only, no duplicate field.
#ifndef MOBILESYNC_SYNC_AGENT_ATTRIBUTE_FIELDS_H_
#define MOBILESYNC_SYNC_AGENT_ATTRIBUTE_FIELDS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace mobilesync::agent {

// Canonical decimal (no sign, no leading zero) that fits in 64 bits.
bool ParseU64(std::string_view s, uint64_t* out);

// "v1 a=b c=d" -> fields; false without the v1 magic or on a duplicate.
bool ParseFields(std::string_view v, std::map<std::string, std::string>* out);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_ATTRIBUTE_FIELDS_H_
