// IdMap: the pairing of local and remote ids for every message in the remote
// window (the patent's client mapping table). One-to-one in both directions.
//
// The agent persists it (mailbox attributes); the engine keeps an in-memory
// copy and emits kPutMapping/kRemoveMapping ops in the order the driver must
// persist them.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_ID_MAP_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_ID_MAP_H_

#include <cstddef>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "sync_agent/engine/types.h"

namespace mobilesync::engine {

class IdMap {
 public:
  // Pairs local with remote. Putting a pair that is already there is OK
  // (idempotent). On failure (either id already paired with another one, or
  // an invalid id) returns InvalidArgument and changes nothing.
  [[nodiscard]] Status Put(const LocalId& local, RemoteId remote);
  // Each returns false when there was nothing to remove.
  bool RemoveByLocal(const LocalId& local);
  bool RemoveByRemote(RemoteId remote);
  void Clear();

  // nullptr when unmapped. Pointers stay valid until the next change.
  const RemoteId* FindRemote(const LocalId& local) const;
  const LocalId* FindLocal(RemoteId remote) const;
  bool HasLocal(const LocalId& local) const { return FindRemote(local) != nullptr; }
  bool HasRemote(RemoteId remote) const { return FindLocal(remote) != nullptr; }

  size_t size() const { return by_local_.size(); }
  bool empty() const { return by_local_.empty(); }
  // Every pair, ordered by local id.
  const std::map<LocalId, RemoteId>& pairs() const { return by_local_; }

 private:
  std::map<LocalId, RemoteId> by_local_;
  std::unordered_map<RemoteId, LocalId> by_remote_;
};

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_ID_MAP_H_
