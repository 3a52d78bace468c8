#include "sync_agent/engine/initial_sync.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "sync_agent/engine/window.h"

namespace mobilesync::engine {

SyncDecision DecideSyncKind(SyncGeneration agent, SyncGeneration server, const IdMap& map,
                            uint32_t server_window_count, uint32_t uidvalidity) {
  if (agent == 0) return {SyncKind::kInitial, "agent never synchronised"};
  if (server == 0) return {SyncKind::kInitial, "server never synchronised"};
  if (agent != server) {
    return {SyncKind::kInitial, "sync generations differ (agent " + std::to_string(agent) +
                                    ", server " + std::to_string(server) + ")"};
  }
  if (map.empty() && server_window_count > 0) {
    return {SyncKind::kInitial, "id map lost"};
  }
  for (const auto& pair : map.pairs()) {
    if (pair.first.uidvalidity != uidvalidity) {
      return {SyncKind::kInitial, "UIDVALIDITY changed"};
    }
  }
  return {SyncKind::kUpdate, "generation " + std::to_string(agent)};
}

SyncDecision DecideSyncKind(SyncGeneration agent, SyncGeneration server, const IdMap& map,
                            uint32_t server_window_count,
                            const std::map<std::string, uint32_t>& uidvalidities) {
  // The generation and lost-map rules do not depend on the mailbox: decide
  // them with an empty map of the right emptiness, then check each pairing.
  SyncDecision d = DecideSyncKind(agent, server, IdMap(), map.empty() ? server_window_count : 0, 0);
  if (d.kind == SyncKind::kInitial) return d;
  for (const auto& pair : map.pairs()) {
    auto it = uidvalidities.find(pair.first.mailbox);
    if (it == uidvalidities.end() || it->second != pair.first.uidvalidity) {
      return {SyncKind::kInitial, "UIDVALIDITY of " + pair.first.mailbox + " changed"};
    }
  }
  return d;
}

InitialSyncPlan PlanInitialSync(const std::vector<LocalMessage>& local,
                                const std::vector<RemoteMessage>& remote, const IdMap& map,
                                const std::vector<Action>& local_actions, ConflictPolicy policy,
                                const std::vector<RemoteId>& remote_destroyed) {
  InitialSyncPlan plan;
  std::map<LocalId, const LocalMessage*> local_by_id;
  for (const LocalMessage& m : local) local_by_id.emplace(m.id, &m);
  std::set<RemoteId> remote_ids;
  for (const RemoteMessage& m : remote) remote_ids.insert(m.id);
  std::set<LocalId> destroyed;  // recorded by the local user
  for (const Action& a : local_actions) {
    if (a.kind == ActionKind::kDestroy) destroyed.insert(a.local);
  }

  // Unmapped local messages by match key, oldest first within a key, so a
  // duplicated Message-ID pairs one to one and in a stable order.
  std::unordered_map<std::string, std::vector<const LocalMessage*>> by_key;
  for (const LocalMessage& m : local) {
    if (!map.HasLocal(m.id)) by_key[m.meta.match_key].push_back(&m);
  }
  for (auto& [key, v] : by_key) {
    std::sort(v.begin(), v.end(), [](const LocalMessage* a, const LocalMessage* b) {
      return NewerFirst(b->meta, a->meta);
    });
  }

  const std::set<RemoteId> gone_remotely(remote_destroyed.begin(), remote_destroyed.end());
  for (const auto& [l, r] : map.pairs()) {
    if (remote_ids.count(r) != 0) continue;
    if (gone_remotely.count(r) != 0 && local_by_id.count(l) != 0) {
      plan.destroy_local.emplace_back(l, r);
    } else {
      plan.stale.emplace_back(l, r);
    }
  }

  std::vector<const RemoteMessage*> to_fetch;
  for (const RemoteMessage& rm : remote) {
    const LocalId* mapped = map.FindLocal(rm.id);
    const LocalMessage* lm = nullptr;
    if (mapped != nullptr) {
      auto it = local_by_id.find(*mapped);
      if (it != local_by_id.end()) {
        lm = it->second;
      } else if (destroyed.count(*mapped) != 0) {
        plan.destroy_remote.push_back(rm.id);
        continue;
      } else {
        // The local copy vanished without a recorded destroy: never infer a
        // deletion; unpair and copy the message back.
        plan.stale.emplace_back(*mapped, rm.id);
      }
    }
    if (lm == nullptr) {
      auto it = by_key.find(rm.meta.match_key);
      if (it != by_key.end() && !it->second.empty()) {
        lm = it->second.front();
        it->second.erase(it->second.begin());
        plan.map_by_key.emplace_back(lm->id, rm.id);
      }
    }
    if (lm == nullptr) {
      to_fetch.push_back(&rm);
      continue;
    }
    if (lm->meta.state != rm.meta.state) {
      MessageState s = ResolveConflict(lm->meta.state, rm.meta.state, policy);
      if (s != lm->meta.state) plan.set_local.emplace_back(lm->id, s);
      if (s != rm.meta.state) plan.set_remote.emplace_back(rm.id, s);
    }
  }
  std::sort(to_fetch.begin(), to_fetch.end(), [](const RemoteMessage* a, const RemoteMessage* b) {
    return NewerFirst(a->meta, b->meta);
  });
  for (const RemoteMessage* rm : to_fetch) plan.fetch.push_back(rm->id);
  return plan;
}

}  // namespace mobilesync::engine
