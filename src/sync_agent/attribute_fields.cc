#include "sync_agent/attribute_fields.h"

namespace mobilesync::agent {

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool ParseFields(std::string_view v, std::map<std::string, std::string>* out) {
  if (v.substr(0, 3) != "v1 " && v != "v1") return false;
  size_t pos = 2;
  while (pos < v.size()) {
    if (v[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = v.find(' ', pos);
    if (end == std::string_view::npos) end = v.size();
    std::string_view f = v.substr(pos, end - pos);
    size_t eq = f.find('=');
    if (eq == std::string_view::npos) return false;
    if (!out->emplace(std::string(f.substr(0, eq)), std::string(f.substr(eq + 1))).second)
      return false;
    pos = end;
  }
  return true;
}

}  // namespace mobilesync::agent
