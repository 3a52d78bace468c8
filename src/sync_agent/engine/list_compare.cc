#include "sync_agent/engine/list_compare.h"

#include <unordered_set>

namespace mobilesync::engine {

CompareResult CompareServerWithDatabase(
    const std::vector<std::string>& server_uids,
    const std::vector<DatabaseRecord>& database) {
  CompareResult out;
  std::unordered_set<std::string> on_server(server_uids.begin(),
                                            server_uids.end());
  size_t i = 0;
  for (const DatabaseRecord& rec : database) {
    if (on_server.count(rec.uid) == 0) {
      // Records are deleted only after the server deleted the message, so a
      // mismatch can only mean the server deleted it.
      out.removed.push_back(rec);
      continue;
    }
    while (i < server_uids.size() && server_uids[i] != rec.uid) ++i;
    if (i < server_uids.size()) ++i;
    if (rec.state == MessageState::kDestroyed) {
      out.to_delete.push_back(rec);
    } else {
      out.synchronized.push_back(rec);
    }
  }
  return out;
}

CompareResult CompareClientWithDatabase(
    const std::vector<ClientRecord>& client,
    const std::vector<DatabaseRecord>& database, ConflictPolicy policy) {
  CompareResult out;
  size_t i = 0;
  for (const DatabaseRecord& rec : database) {
    // Phase one: a matching UID. Both lists share one order, so the client
    // cursor only moves forward.
    size_t j = i;
    while (j < client.size() && client[j].uid != rec.uid) ++j;
    DatabaseRecord merged = rec;
    if (j < client.size()) {
      // Phase two: the state of higher precedence wins.
      merged.state = ResolveConflict(client[j].state, rec.state, policy);
      i = j + 1;
    }
    if (merged.state == MessageState::kDestroyed) {
      out.to_delete.push_back(merged);
    }
    out.synchronized.push_back(merged);
  }
  return out;
}

}  // namespace mobilesync::engine
