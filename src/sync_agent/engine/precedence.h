// Conflict precedence: which state wins when both sides changed the same
// message since the last sync.
//
// Default (seed 003): Destroyed > Trash (marked for delete) > Read > Unread.
// Like BES's "mailbox wins / handheld wins", a per-user setting can instead
// let one side win every Unread/Read/Trash conflict. A destroy wins under
// every policy: it cannot be undone on the side that did it (the message is
// gone there), and undoing it on the other side would mean resurrecting mail
// the user destroyed.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_PRECEDENCE_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_PRECEDENCE_H_

#include <string_view>

#include "sync_agent/engine/types.h"

namespace mobilesync::engine {

// ConflictPolicy itself is in types.h (it travels in kHello).

// "state-precedence", "mailbox-wins", "handheld-wins".
const char* ConflictPolicyName(ConflictPolicy policy);
// Parses a name above; false (and *policy untouched) when unknown.
bool ParseConflictPolicy(std::string_view name, ConflictPolicy* policy);

// The state both sides must end in when the local side changed the message
// to `local` and the remote side to `remote` since the last sync.
MessageState ResolveConflict(MessageState local, MessageState remote, ConflictPolicy policy);

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_PRECEDENCE_H_
