#include "sync_agent/engine/window.h"

#include <set>

namespace mobilesync::engine {

std::vector<std::pair<LocalId, RemoteId>> PlanNormalise(
    const std::vector<LocalMessage>& local, const IdMap& map,
    const WindowPolicy& policy) {
  std::vector<size_t> chosen = SelectWindow(local, policy);
  std::set<LocalId> keep;
  for (size_t i : chosen) keep.insert(local[i].id);

  // Oldest first, so that a session cut short has dropped the least
  // valuable messages first.
  std::vector<size_t> order;
  for (size_t i = 0; i < local.size(); ++i) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return NewerFirst(local[b].meta, local[a].meta);
  });
  std::vector<std::pair<LocalId, RemoteId>> out;
  std::set<LocalId> present;
  for (size_t i : order) {
    present.insert(local[i].id);
    const RemoteId* r = map.FindRemote(local[i].id);
    if (r != nullptr && keep.count(local[i].id) == 0) {
      out.emplace_back(local[i].id, *r);
    }
  }
  for (const auto& [l, r] : map.pairs()) {
    if (present.count(l) == 0) out.emplace_back(l, r);
  }
  return out;
}

std::vector<LocalId> PlanPull(const std::vector<LocalMessage>& local,
                              const IdMap& map, const WindowPolicy& policy) {
  std::vector<LocalId> out;
  for (size_t i : SelectWindow(local, policy)) {
    if (!map.HasLocal(local[i].id)) out.push_back(local[i].id);
  }
  return out;
}

}  // namespace mobilesync::engine
