#include "sync_agent/engine/action_list.h"

#include <algorithm>

namespace mobilesync::engine {

bool ActionList::SameSubject(const Action& a, const Action& b) const {
  return side_ == Side::kLocal ? a.local == b.local : a.remote == b.remote;
}

uint64_t ActionList::Record(Action action) {
  if (IsStateChange(action.kind)) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (!SameSubject(*it, action)) {
        ++it;
      } else if (it->kind == ActionKind::kInsert) {
        // The other side has not got the message yet: send it in its
        // current state instead of sending a change after it.
        it->meta.state = action.meta.state;
        return it->seq;
      } else if (IsStateChange(it->kind)) {
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  } else if (action.kind == ActionKind::kDestroy) {
    bool had_insert = false;
    auto same = [&](const Action& e) {
      if (!SameSubject(e, action)) return false;
      had_insert = had_insert || e.kind == ActionKind::kInsert;
      return true;
    };
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), same),
                   entries_.end());
    if (had_insert) return 0;
  }
  action.seq = next_seq_++;
  entries_.push_back(std::move(action));
  return entries_.back().seq;
}

bool ActionList::Remove(uint64_t seq) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [seq](const Action& e) { return e.seq == seq; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

void ActionList::RemoveSubject(const Action& action) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Action& e) {
                                  return SameSubject(e, action);
                                }),
                 entries_.end());
}

void ActionList::RemoveStateChanges(const Action& action) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Action& e) {
                                  return IsStateChange(e.kind) &&
                                         SameSubject(e, action);
                                }),
                 entries_.end());
}

const Action* ActionList::PendingChange(const Action& subject) const {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (SameSubject(*it, subject) &&
        (IsStateChange(it->kind) || it->kind == ActionKind::kDestroy)) {
      return &*it;
    }
  }
  return nullptr;
}

bool ActionList::HasPendingInsert(const Action& subject) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Action& e) {
    return e.kind == ActionKind::kInsert && SameSubject(e, subject);
  });
}

}  // namespace mobilesync::engine
