#include "sync_agent/engine/id_map.h"

#include <string>

namespace mobilesync::engine {

Status IdMap::Put(const LocalId& local, RemoteId remote) {
  if (!local.valid() || remote == kNoRemoteId) {
    return Status::InvalidArgument("id map: invalid id", ToString(local));
  }
  const RemoteId* old_remote = FindRemote(local);
  const LocalId* old_local = FindLocal(remote);
  if (old_remote != nullptr && *old_remote == remote) return Status::OK();
  if (old_remote != nullptr) {
    return Status::InvalidArgument(
        "id map: local id already mapped to remote " +
            std::to_string(*old_remote),
        ToString(local));
  }
  if (old_local != nullptr) {
    return Status::InvalidArgument(
        "id map: remote id already mapped to " + ToString(*old_local),
        std::to_string(remote));
  }
  by_local_.emplace(local, remote);
  by_remote_.emplace(remote, local);
  return Status::OK();
}

bool IdMap::RemoveByLocal(const LocalId& local) {
  auto it = by_local_.find(local);
  if (it == by_local_.end()) return false;
  by_remote_.erase(it->second);
  by_local_.erase(it);
  return true;
}

bool IdMap::RemoveByRemote(RemoteId remote) {
  auto it = by_remote_.find(remote);
  if (it == by_remote_.end()) return false;
  by_local_.erase(it->second);
  by_remote_.erase(it);
  return true;
}

void IdMap::Clear() {
  by_local_.clear();
  by_remote_.clear();
}

const RemoteId* IdMap::FindRemote(const LocalId& local) const {
  auto it = by_local_.find(local);
  return it == by_local_.end() ? nullptr : &it->second;
}

const LocalId* IdMap::FindLocal(RemoteId remote) const {
  auto it = by_remote_.find(remote);
  return it == by_remote_.end() ? nullptr : &it->second;
}

}  // namespace mobilesync::engine
