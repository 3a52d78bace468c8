// The agent's registry of enabled users, persisted in SQLite under
// state_dir (agent.db) so that a restart loses nothing.
//
// On-disk model (one table, WAL journal; synchronous=NORMAL: a crash may
// lose the last few status updates, never the file's consistency):
//   users(name TEXT PRIMARY KEY,  -- the Dovecot user name
//         source TEXT,            -- who enabled it: ctl, poke, userdb
//         enabled_at INTEGER,     -- unix seconds
//         last_sync INTEGER,      -- unix milliseconds of the last finished
//                                 -- session, 0 = never
//         last_result TEXT,       -- "ok" or the failure, for status
//         pending_actions INTEGER,-- actions the plugin had queued, -1 unknown
//         quick_token TEXT)       -- the last session's quick token, "" none
//                                 -- (LocalMailbox QuickToken: a cache; a
//                                 -- lost or stale one costs one attribute
//                                 -- read, never a missed change)
// Everything is mirrored in memory (a few hundred bytes per user): status
// and the scheduler never query the database.
#ifndef MOBILESYNC_SYNC_AGENT_USER_REGISTRY_H_
#define MOBILESYNC_SYNC_AGENT_USER_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

struct sqlite3;

namespace mobilesync::agent {

struct UserRecord {
  std::string name;
  std::string source;
  int64_t enabled_at = 0;
  int64_t last_sync_ms = 0;
  std::string last_result;
  int64_t pending_actions = -1;
  std::string quick_token;
};

class UserRegistry {
 public:
  ~UserRegistry();
  UserRegistry(const UserRegistry&) = delete;
  UserRegistry& operator=(const UserRegistry&) = delete;

  // Opens (creating if needed) the database at `path` and loads it.
  [[nodiscard]] static Status Open(const std::string& path, std::unique_ptr<UserRegistry>* out);

  // Adds the users not yet enabled, in one transaction. *added (optional)
  // gets the names that were new. REQUIRES: names validated.
  [[nodiscard]] Status Enable(const std::vector<std::string>& names, const std::string& source,
                              std::vector<std::string>* added);
  // NotFound if the user was not enabled.
  [[nodiscard]] Status Disable(const std::string& name);
  // Records the outcome of a session and the user's quick token ("" for
  // none). NotFound if the user is not enabled.
  [[nodiscard]] Status RecordSync(const std::string& name, int64_t when_ms,
                                  const std::string& result, int64_t pending_actions,
                                  const std::string& quick_token = "");

  const UserRecord* Find(const std::string& name) const;
  const std::map<std::string, UserRecord>& users() const { return users_; }
  size_t size() const { return users_.size(); }

 private:
  UserRegistry() = default;
  [[nodiscard]] Status Exec(const char* sql);
  [[nodiscard]] Status Load();
  [[nodiscard]] Status AddColumnIfMissing(const char* name, const char* decl);

  sqlite3* db_ = nullptr;
  std::string path_;
  std::map<std::string, UserRecord> users_;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_USER_REGISTRY_H_
