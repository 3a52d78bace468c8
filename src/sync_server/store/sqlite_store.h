// SqliteStore: the embedded default MessageStore, one SQLite database file.
//
// On-disk model (schema version 1, PRAGMA user_version):
//   users(user PK, window_size, generation, next_id, next_seq)
//   messages(user, id, date, size, state, prev_state, residence, match_key,
//            message_id, guid, subject, sender, body)      UNIQUE(user, id)
//   actions(user, seq, kind, remote_id, state)             PK(user, seq)
//   agent_keys(user, insert_key, remote_id)                PK(user, insert_key)
//   outbox(user, id, to_addr, subject, message, via_sync, done)
//   sent(user, id, insert_key, body)                       UNIQUE(user, insert_key)
//
// Durability: WAL journal, synchronous=FULL, and every public call is one
// BEGIN IMMEDIATE ... COMMIT. A process killed at any instant leaves either
// the state before or after a call, never a mix (SQLite's atomic commit);
// the WAL is replayed by the next open. Bodies leave the database as soon as
// a message leaves the window: the server keeps only N messages' worth.
#ifndef MOBILESYNC_SYNC_SERVER_STORE_SQLITE_STORE_H_
#define MOBILESYNC_SYNC_SERVER_STORE_SQLITE_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "sync_server/store/message_store.h"

struct sqlite3;

namespace mobilesync::server {

struct SqliteDeleter {
  void operator()(sqlite3* db) const;
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteDeleter>;

class SqliteStore : public MessageStore {
 public:
  // Opens (creating if needed, mode 0600) the database at `path`.
  [[nodiscard]] static Status Open(const std::string& path,
                                   std::unique_ptr<SqliteStore>* out);
  ~SqliteStore() override;

  Status EnsureUser(const std::string& user, uint32_t window_size) override;
  Status GetUser(const std::string& user, UserInfo* out) override;
  Status ListWindow(const std::string& user, std::vector<MessageRecord>* out) override;
  Status GetMessage(const std::string& user, uint64_t id, MessageRecord* out) override;
  Status DeviceInsert(const std::string& user, const std::string& message, int64_t date,
                      uint64_t* id) override;
  Status DeviceSetState(const std::string& user, uint64_t id, MessageState state) override;
  Status DeviceRestore(const std::string& user, uint64_t id) override;
  Status DeviceCompose(const std::string& user, const OutboxItem& item, uint64_t* id) override;
  Status GetOutboxItem(const std::string& user, uint64_t id, OutboxItem* out) override;
  Status MarkOutboxSent(const std::string& user, uint64_t id) override;
  Status ApplyAgentAction(const std::string& user, const AgentAction& action,
                          ApplyResult* result) override;
  Status PendingActions(const std::string& user, uint64_t after_seq, size_t limit,
                        std::vector<ServerAction>* out) override;
  Status RemoveAction(const std::string& user, uint64_t seq) override;
  Status CommitInitialSync(const std::string& user, uint64_t through_seq,
                           uint64_t* generation) override;
  Status CollectGarbage(const std::string& user, std::vector<uint64_t>* collected) override;
  Status Check() override;
  Status BeginBatch() override;
  Status EndBatch() override;

  // The body of a message the agent filed as sent (tests).
  [[nodiscard]] Status GetSent(const std::string& user, uint64_t id, std::string* body);

 private:
  class Stmt;
  class Txn;
  explicit SqliteStore(SqlitePtr db, std::string path);

  Status Exec(const char* sql);
  Status Error(const char* what) const;
  Status LoadUser(const std::string& user, UserInfo* out);
  Status NextId(const std::string& user, uint64_t* id);
  Status RecordAction(const std::string& user, ActionKind kind, uint64_t remote_id,
                      MessageState state);
  Status GcLocked(const std::string& user, std::vector<uint64_t>* collected);
  Status LoadMessage(const std::string& user, uint64_t id, bool with_body, bool* found,
                     MessageRecord* out);
  Status SetResidence(const std::string& user, uint64_t id, Residence residence);
  Status DeleteActionsFor(const std::string& user, uint64_t id, bool state_changes_only);
  Status ApplyStateLocked(const std::string& user, const AgentAction& a, ApplyResult* r);

  SqlitePtr db_;
  std::string path_;
  bool in_batch_ = false;  // BeginBatch's transaction is open
};

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_STORE_SQLITE_STORE_H_
