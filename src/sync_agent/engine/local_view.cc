#include "sync_agent/engine/local_view.h"

#include "sync_agent/engine/window.h"

namespace mobilesync::engine {

LocalView::LocalView(const std::vector<LocalMessage>& messages) {
  for (const LocalMessage& m : messages) Put(m);
}

void LocalView::Put(const LocalMessage& message) {
  Erase(message.id);
  by_id_.emplace(message.id, message);
  by_key_.emplace(message.meta.match_key, message.id);
}

void LocalView::Erase(const LocalId& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  auto range = by_key_.equal_range(it->second.meta.match_key);
  for (auto k = range.first; k != range.second; ++k) {
    if (k->second == id) {
      by_key_.erase(k);
      break;
    }
  }
  by_id_.erase(it);
}

void LocalView::SetState(const LocalId& id, MessageState state) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) it->second.meta.state = state;
}

const LocalMessage* LocalView::Find(const LocalId& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

const LocalMessage* LocalView::FindUnmappedByKey(const std::string& key,
                                                 const IdMap& map) const {
  const LocalMessage* best = nullptr;
  auto range = by_key_.equal_range(key);
  for (auto k = range.first; k != range.second; ++k) {
    if (map.HasLocal(k->second)) continue;
    const LocalMessage* m = Find(k->second);
    if (best == nullptr || NewerFirst(best->meta, m->meta)) best = m;
  }
  return best;
}

std::vector<LocalMessage> LocalView::List() const {
  std::vector<LocalMessage> out;
  out.reserve(by_id_.size());
  for (const auto& [id, m] : by_id_) out.push_back(m);
  return out;
}

}  // namespace mobilesync::engine
