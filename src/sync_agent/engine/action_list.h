// ActionList: one side's ordered list of changes since the last sync (the
// patent's action list 215 / 220), with the coalescing rules both the plugin
// and the remote store apply when they record a change.
//
// Entries get increasing sequence numbers that are never reused; the engine
// names an entry by its seq when it tells the driver to delete it (after the
// entry's own ack). An entry's subject is its local id on the agent side and
// its remote id on the server side.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_ACTION_LIST_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_ACTION_LIST_H_

#include <cstdint>
#include <vector>

#include "sync_agent/engine/types.h"

namespace mobilesync::engine {

class ActionList {
 public:
  enum class Side : uint8_t { kLocal, kRemote };

  explicit ActionList(Side side) : side_(side) {}

  // Appends `action` with the next seq and returns that seq, after coalescing:
  //  * a state change replaces earlier state changes of the same message (only
  //    the latest state matters), and folds into a pending insert (which then
  //    carries the new state) instead of being appended;
  //  * a destroy removes every earlier entry of the message; when one of them
  //    was its insert, the other side never saw the message and the destroy is
  //    dropped too (returns 0).
  // Coalescing never reorders entries of different messages.
  uint64_t Record(Action action);

  // Removes the entry with this seq; false when there is none (e.g. it was
  // coalesced away, or this is a repeated delete after a crash).
  bool Remove(uint64_t seq);
  // Removes every entry about `action`'s subject (the server does this for its
  // own pending changes that lost a conflict).
  void RemoveSubject(const Action& action);
  // Removes every entry for which keep(entry) is false, in one pass.
  template <typename Keep>
  void Retain(Keep keep) {
    std::vector<Action> kept;
    kept.reserve(entries_.size());
    for (Action& a : entries_) {
      if (keep(a)) kept.push_back(std::move(a));
    }
    entries_.swap(kept);
  }
  // Removes only the subject's pending state changes.
  void RemoveStateChanges(const Action& action);
  void Clear() { entries_.clear(); }

  // The latest pending state change or destroy of the subject, or nullptr.
  const Action* PendingChange(const Action& subject) const;
  // True when the subject has a pending insert.
  bool HasPendingInsert(const Action& subject) const;

  const std::vector<Action>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  uint64_t next_seq() const { return next_seq_; }

 private:
  bool SameSubject(const Action& a, const Action& b) const;

  Side side_;
  uint64_t next_seq_ = 1;
  std::vector<Action> entries_;
};

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_ACTION_LIST_H_
