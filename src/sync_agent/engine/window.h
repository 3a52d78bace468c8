// The remote window: which N messages of the virtual mailbox the remote side
// holds, and the two passes that make it so (seed 000 figures 6A-8):
//  * normalise: unmap window messages that are no longer among the chosen N
//    (their local copies stay; only the pairing goes);
//  * pull: insert the chosen messages the window lacks, newest first.
// The remote store's garbage collector uses the same choice, so both halves
// agree on which message is "the oldest" to drop.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_WINDOW_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_WINDOW_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "sync_agent/engine/id_map.h"
#include "sync_agent/engine/types.h"

namespace mobilesync::engine {

struct WindowPolicy {
  uint32_t size = 0;  // N: messages the remote side holds
  // mbsync MaxMessages-like: keep \Flagged and unread messages in the window
  // in preference to older read ones. Default: strictly the N newest.
  bool prefer_flagged_or_unread = false;
};

// The virtual mailbox's order, newest first (slot 1 of the patent's tables).
// Equal dates fall back to the arrival order where the side knows it (the
// agent: UIDs), then to the match key, which both sides share. The window's
// content is the agent's choice (normalise and pull); the server's garbage
// collector only acts when the device pushed it over N.
inline bool NewerFirst(const MessageMeta& a, const MessageMeta& b) {
  if (a.date != b.date) return a.date > b.date;
  if (a.order != b.order) return a.order > b.order;
  return a.match_key < b.match_key;
}

// Indices into `msgs` of the messages the window should hold, in NewerFirst
// order. Destroyed messages never count. Msg is LocalMessage or RemoteMessage.
template <typename Msg>
std::vector<size_t> SelectWindow(const std::vector<Msg>& msgs, const WindowPolicy& policy) {
  std::vector<size_t> order;
  order.reserve(msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].meta.state != MessageState::kDestroyed) order.push_back(i);
  }
  auto newer = [&](size_t a, size_t b) { return NewerFirst(msgs[a].meta, msgs[b].meta); };
  auto preferred = [&](size_t i) {
    return msgs[i].meta.flagged || msgs[i].meta.state == MessageState::kUnread;
  };
  size_t n = std::min<size_t>(policy.size, order.size());
  if (policy.prefer_flagged_or_unread) {
    auto by_preference = [&](size_t a, size_t b) {
      if (preferred(a) != preferred(b)) return preferred(a);
      return newer(a, b);
    };
    std::partial_sort(order.begin(), order.begin() + n, order.end(), by_preference);
    order.resize(n);
    std::sort(order.begin(), order.end(), newer);
  } else {
    std::partial_sort(order.begin(), order.begin() + n, order.end(), newer);
    order.resize(n);
  }
  return order;
}

// Normalise: the mapped pairs to unmap, oldest first: those whose local
// message is not in the chosen window, and those whose local message no
// longer exists (a stale pairing; unmapping never destroys anything).
std::vector<std::pair<LocalId, RemoteId>> PlanNormalise(const std::vector<LocalMessage>& local,
                                                        const IdMap& map,
                                                        const WindowPolicy& policy);

// Pull: the local messages of the chosen window that are not mapped yet,
// newest first (each becomes an insert whose ack carries its remote id).
std::vector<LocalId> PlanPull(const std::vector<LocalMessage>& local, const IdMap& map,
                              const WindowPolicy& policy);

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_WINDOW_H_
