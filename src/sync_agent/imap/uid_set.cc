#include "sync_agent/imap/uid_set.h"

#include <algorithm>

#include "sync_agent/attribute_fields.h"

namespace mobilesync::agent::imap {

std::string UidSet(std::vector<uint64_t> uids) {
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  std::string out;
  for (size_t i = 0; i < uids.size();) {
    size_t j = i;
    while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(uids[i]);
    if (j > i) out += ":" + std::to_string(uids[j]);
    i = j + 1;
  }
  return out;
}

namespace {

// Calls f(low, high) for each "n" or "n:m" of a comma-separated set, as
// written (low may be above high); false when a part is not one, or when f
// says so.
template <typename F>
bool ForEachRange(std::string_view set, F f) {
  if (set.empty()) return false;
  while (!set.empty()) {
    const size_t comma = set.find(',');
    std::string_view part = set.substr(0, comma);
    if (comma != std::string_view::npos && comma + 1 == set.size()) return false;  // "1,"
    set.remove_prefix(comma == std::string_view::npos ? set.size() : comma + 1);
    const size_t colon = part.find(':');
    uint64_t low = 0, high = 0;
    if (!ParseU64(part.substr(0, colon), &low)) return false;
    high = low;
    if (colon != std::string_view::npos && !ParseU64(part.substr(colon + 1), &high)) return false;
    if (!f(low, high)) return false;
  }
  return true;
}

}  // namespace

bool ParseUidSet(std::string_view set, size_t max, std::vector<uint64_t>* out) {
  return ForEachRange(set, [max, out](uint64_t low, uint64_t high) {
    if (low == 0 || high < low || high > UINT32_MAX) return false;
    if (!out->empty() && low <= out->back()) return false;  // not ascending, or overlapping
    if (out->size() > max || high - low >= max - out->size()) return false;
    for (uint64_t u = low; u <= high; ++u) out->push_back(u);
    return true;
  });
}

bool UidRanges::Parse(std::string_view set) {
  ranges_.clear();
  std::vector<std::pair<uint64_t, uint64_t>> parts;
  const bool ok = ForEachRange(set, [&parts](uint64_t low, uint64_t high) {
    if (high < low) std::swap(low, high);
    if (low == 0 || high > UINT32_MAX) return false;
    parts.emplace_back(low, high);
    return true;
  });
  if (!ok) return false;
  std::sort(parts.begin(), parts.end());
  for (const auto& p : parts) {
    if (!ranges_.empty() && p.first <= ranges_.back().second + 1) {
      ranges_.back().second = std::max(ranges_.back().second, p.second);
    } else {
      ranges_.push_back(p);
    }
  }
  return true;
}

bool UidRanges::Contains(uint64_t uid) const {
  // The last range starting at or below uid.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(uid, UINT64_MAX));
  return it != ranges_.begin() && uid <= std::prev(it)->second;
}

}  // namespace mobilesync::agent::imap
