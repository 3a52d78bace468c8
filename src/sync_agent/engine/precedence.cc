#include "sync_agent/engine/precedence.h"

namespace mobilesync::engine {

const char* ConflictPolicyName(ConflictPolicy policy) {
  switch (policy) {
    case ConflictPolicy::kStatePrecedence:
      return "state-precedence";
    case ConflictPolicy::kMailboxWins:
      return "mailbox-wins";
    case ConflictPolicy::kHandheldWins:
      return "handheld-wins";
  }
  return "?";
}

bool ParseConflictPolicy(std::string_view name, ConflictPolicy* policy) {
  for (ConflictPolicy p :
       {ConflictPolicy::kStatePrecedence, ConflictPolicy::kMailboxWins,
        ConflictPolicy::kHandheldWins}) {
    if (name == ConflictPolicyName(p)) {
      *policy = p;
      return true;
    }
  }
  return false;
}

MessageState ResolveConflict(MessageState local, MessageState remote,
                             ConflictPolicy policy) {
  if (local == MessageState::kDestroyed || remote == MessageState::kDestroyed) {
    return MessageState::kDestroyed;
  }
  switch (policy) {
    case ConflictPolicy::kMailboxWins:
      return local;
    case ConflictPolicy::kHandheldWins:
      return remote;
    case ConflictPolicy::kStatePrecedence:
      break;
  }
  return local > remote ? local : remote;
}

}  // namespace mobilesync::engine
