#include "sync_agent/engine/window.h"

#include <set>

namespace mobilesync::engine {

std::vector<std::pair<LocalId, RemoteId>> PlanNormalise(const std::vector<LocalMessage>& local,
                                                        const IdMap& map,
                                                        const WindowPolicy& policy) {
  std::vector<size_t> chosen = SelectWindow(local, policy);
  std::set<LocalId> keep;
  for (size_t i : chosen) keep.insert(local[i].id);

  // Oldest first, so that a session cut short has dropped the least
  // valuable messages first.
  std::vector<size_t> order;
  for (size_t i = 0; i < local.size(); ++i) order.push_back(i);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return NewerFirst(local[b].meta, local[a].meta); });
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

std::vector<LocalId> PlanPull(const std::vector<LocalMessage>& local, const IdMap& map,
                              const WindowPolicy& policy) {
  // Oldest first: the server numbers inserts in the order they arrive and
  // its collector breaks ties of date by that number, as we break them by
  // uid. Sending the newest first would number same-second
  // messages against their uid order, and the two sides would then disagree
  // on which of them belongs in the window: the server's collector drops
  // one, the pull puts it back, for ever.
  std::vector<size_t> chosen = SelectWindow(local, policy);
  std::sort(chosen.begin(), chosen.end(),
            [&](size_t a, size_t b) { return NewerFirst(local[b].meta, local[a].meta); });
  std::vector<LocalId> out;
  for (size_t i : chosen) {
    if (!map.HasLocal(local[i].id)) out.push_back(local[i].id);
  }
  return out;
}

}  // namespace mobilesync::engine
