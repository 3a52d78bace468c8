// LocalView: the engine's in-memory view of the local mailbox during one
// session (the list the driver read at the start, plus what the session
// appended, changed or destroyed since), indexed by id and by match key.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_LOCAL_VIEW_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_LOCAL_VIEW_H_

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync_agent/engine/id_map.h"
#include "sync_agent/engine/types.h"

namespace mobilesync::engine {

class LocalView {
 public:
  LocalView() = default;
  explicit LocalView(const std::vector<LocalMessage>& messages);

  // Adds or replaces a message.
  void Put(const LocalMessage& message);
  void Erase(const LocalId& id);
  void SetState(const LocalId& id, MessageState state);

  const LocalMessage* Find(const LocalId& id) const;
  // An unmapped message with this match key (the oldest when several), or
  // nullptr: how a re-run finds what an interrupted run copied.
  const LocalMessage* FindUnmappedByKey(const std::string& key, const IdMap& map) const;
  // All messages (any order).
  std::vector<LocalMessage> List() const;
  size_t size() const { return by_id_.size(); }

 private:
  std::map<LocalId, LocalMessage> by_id_;
  std::unordered_multimap<std::string, LocalId> by_key_;
};

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_LOCAL_VIEW_H_
