#include "sync_agent/quick_token.h"

#include <map>

#include "plugin/action_record.h"
#include "sync_agent/attribute_fields.h"

namespace mobilesync::agent {

std::string MakeQuickToken(engine::SyncGeneration generation, uint32_t window_size,
                           const std::string& print, int64_t now_s) {
  return "v1 gen=" + std::to_string(generation) + " n=" + std::to_string(window_size) +
         " ts=" + std::to_string(now_s < 0 ? 0 : now_s) + " fp=" + plugin::PercentEncode(print);
}

bool ParseQuickToken(const std::string& token, int64_t now_s, QuickToken* out, std::string* why) {
  std::map<std::string, std::string> f;
  uint64_t g = 0, n = 0, ts = 0;
  std::string print;
  if (token.size() > kMaxQuickTokenBytes || !ParseFields(token, &f) || !ParseU64(f["gen"], &g) ||
      g == 0 || !ParseU64(f["n"], &n) || n == 0 || n > UINT32_MAX || !ParseU64(f["ts"], &ts) ||
      ts > static_cast<uint64_t>(INT64_MAX) || !f.count("fp") ||
      !plugin::PercentDecode(f["fp"], &print) || print.empty()) {
    *why = "unparseable quick token";
    return false;
  }
  const int64_t made = static_cast<int64_t>(ts);
  // A clock that went back, or a token older than the limit: read the
  // attributes again (bounds how long a change Dovecot did not see, e.g. a
  // restored attribute file, can hide).
  if (made > now_s + 60 || now_s - made > kQuickTokenMaxAgeS) {
    *why = "quick token expired";
    return false;
  }
  out->generation = g;
  out->window_size = static_cast<uint32_t>(n);
  out->print = std::move(print);
  out->made_s = made;
  return true;
}

}  // namespace mobilesync::agent
