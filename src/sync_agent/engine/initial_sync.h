// Choosing between initial and update sync, and planning the initial sync's
// list comparison (seed 000 figure 4; seed 003's two-phase compare).
//
// The plan never deletes mail because one list is empty or shorter than the
// other: a remote message the local side lacks is fetched, a local message
// the remote side lacks stays (pull may copy it), a pairing whose remote
// message is gone is only unpaired. The deletions it makes are destroys a
// user recorded (explicit acts, not inferences from a list): the local
// user's, from the agent's action list, and the device user's, which the
// server names with its list.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_INITIAL_SYNC_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_INITIAL_SYNC_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sync_agent/engine/id_map.h"
#include "sync_agent/engine/precedence.h"
#include "sync_agent/engine/types.h"

namespace mobilesync::engine {

enum class SyncKind : uint8_t { kInitial, kUpdate };

// Why DecideSyncKind chose what it chose (for the log).
struct SyncDecision {
  SyncKind kind = SyncKind::kInitial;
  std::string reason;
};

// Initial sync unless both sides have synchronised before with each other
// (same non-zero generation) and the agent's pairing is usable: a map that
// was lost (empty while the server holds messages) or that names another
// UIDVALIDITY of the mailbox forces an initial sync.
SyncDecision DecideSyncKind(SyncGeneration agent, SyncGeneration server, const IdMap& map,
                            uint32_t server_window_count, uint32_t uidvalidity);
// The same with the current UIDVALIDITY of each mailbox that may hold a
// mapped message (INBOX and Trash have different ones). A pairing naming a
// mailbox missing from `uidvalidities` counts as changed.
SyncDecision DecideSyncKind(SyncGeneration agent, SyncGeneration server, const IdMap& map,
                            uint32_t server_window_count,
                            const std::map<std::string, uint32_t>& uidvalidities);

struct InitialSyncPlan {
  // Pairs found by match key (an earlier run copied the message but the
  // pairing was not saved, or the map was lost): map them, copy nothing.
  std::vector<std::pair<LocalId, RemoteId>> map_by_key;
  // Pairings whose remote message is gone, or whose local message is gone:
  // unpair only.
  std::vector<std::pair<LocalId, RemoteId>> stale;
  // Remote-only messages to fetch and insert locally, in date order, newest
  // first: the user sees recent mail first during a long initial sync, and
  // the new uids follow the patent's numbering (C11 is the newest fetched).
  std::vector<RemoteId> fetch;
  // Matched pairs whose states differ: the merged state per side.
  std::vector<std::pair<LocalId, MessageState>> set_local;
  std::vector<std::pair<RemoteId, MessageState>> set_remote;
  // Remote messages whose local copy the user destroyed (recorded destroy).
  std::vector<RemoteId> destroy_remote;
  // Local messages whose remote copy the device user destroyed (the server
  // still holds the DESTROY): destroy locally, then unpair. Not in `stale`.
  std::vector<std::pair<LocalId, RemoteId>> destroy_local;
};

// REQUIRES: `map` holds no pairing with a stale UIDVALIDITY (the session
// drops those first). `local_actions` is the agent's action list;
// `remote_destroyed` the remote ids the server's list names as destroyed on
// its side (a destroy wins under every policy, so it is carried out even if
// the local copy changed since).
InitialSyncPlan PlanInitialSync(const std::vector<LocalMessage>& local,
                                const std::vector<RemoteMessage>& remote, const IdMap& map,
                                const std::vector<Action>& local_actions, ConflictPolicy policy,
                                const std::vector<RemoteId>& remote_destroyed = {});

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_INITIAL_SYNC_H_
