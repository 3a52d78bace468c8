#include "sync_agent/user_registry.h"

#include <sqlite3.h>

#include <ctime>
#include <set>

#include "sync_agent/quick_token.h"

namespace mobilesync::agent {
namespace {

// Owns one prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Text(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // Runs a statement that returns no rows.
  Status Done(const char* what) {
    if (!ok()) return Status::IOError(what, sqlite3_errmsg(db_));
    int rc = sqlite3_step(stmt_);
    if (rc != SQLITE_DONE) return Status::IOError(what, sqlite3_errmsg(db_));
    return Status::OK();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::string Column(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t),
                         static_cast<size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

}  // namespace

UserRegistry::~UserRegistry() {
  if (db_ != nullptr) sqlite3_close(db_);
}

Status UserRegistry::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = Status::IOError(std::string("sqlite: ") + path_, err ? err : "error");
    sqlite3_free(err);
    return s;
  }
  return Status::OK();
}

Status UserRegistry::Open(const std::string& path, std::unique_ptr<UserRegistry>* out) {
  std::unique_ptr<UserRegistry> r(new UserRegistry());
  r->path_ = path;
  if (sqlite3_open_v2(path.c_str(), &r->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status::IOError("cannot open the user registry " + path,
                           r->db_ ? sqlite3_errmsg(r->db_) : "out of memory");
  }
  // Another process holding the file (a second agent) would otherwise make
  // every write fail at once.
  sqlite3_busy_timeout(r->db_, 2000);
  Status s = r->Exec("PRAGMA journal_mode=WAL");
  if (s.ok()) s = r->Exec("PRAGMA synchronous=NORMAL");
  if (s.ok())
    s = r->Exec(
        "CREATE TABLE IF NOT EXISTS users ("
        " name TEXT PRIMARY KEY NOT NULL,"
        " source TEXT NOT NULL DEFAULT '',"
        " enabled_at INTEGER NOT NULL DEFAULT 0,"
        " last_sync INTEGER NOT NULL DEFAULT 0,"
        " last_result TEXT NOT NULL DEFAULT '',"
        " pending_actions INTEGER NOT NULL DEFAULT -1,"
        " quick_token TEXT NOT NULL DEFAULT '')");
  if (s.ok()) s = r->AddColumnIfMissing("quick_token", "TEXT NOT NULL DEFAULT ''");
  if (s.ok()) s = r->Load();
  if (!s.ok()) return s;
  *out = std::move(r);
  return Status::OK();
}

// A registry written by an older agent lacks the columns added since.
Status UserRegistry::AddColumnIfMissing(const char* name, const char* decl) {
  Stmt info(db_, "SELECT 1 FROM pragma_table_info('users') WHERE name = ?");
  if (!info.ok()) return Status::IOError("sqlite: " + path_, sqlite3_errmsg(db_));
  info.Text(1, name);
  int rc = sqlite3_step(info.get());
  if (rc == SQLITE_ROW) return Status::OK();
  if (rc != SQLITE_DONE) return Status::IOError("sqlite: " + path_, sqlite3_errmsg(db_));
  const std::string sql = std::string("ALTER TABLE users ADD COLUMN ") + name + " " + decl;
  return Exec(sql.c_str());
}

Status UserRegistry::Load() {
  Stmt st(db_,
          "SELECT name, source, enabled_at, last_sync, last_result, pending_actions, quick_token"
          " FROM users");
  if (!st.ok()) return Status::IOError("sqlite: " + path_, sqlite3_errmsg(db_));
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    UserRecord u;
    u.name = Column(st.get(), 0);
    u.source = Column(st.get(), 1);
    u.enabled_at = sqlite3_column_int64(st.get(), 2);
    u.last_sync_ms = sqlite3_column_int64(st.get(), 3);
    u.last_result = Column(st.get(), 4);
    u.pending_actions = sqlite3_column_int64(st.get(), 5);
    u.quick_token = Column(st.get(), 6);
    // A cache the agent wrote itself; bounded all the same (the session
    // parses it again and ignores what it cannot use).
    if (u.quick_token.size() > kMaxQuickTokenBytes) u.quick_token.clear();
    users_[u.name] = std::move(u);
  }
  if (rc != SQLITE_DONE) return Status::IOError("sqlite: reading " + path_, sqlite3_errmsg(db_));
  return Status::OK();
}

Status UserRegistry::Enable(const std::vector<std::string>& names, const std::string& source,
                            std::vector<std::string>* added) {
  std::vector<std::string> fresh;
  std::set<std::string> seen;
  for (const std::string& n : names)
    if (users_.count(n) == 0 && seen.insert(n).second) fresh.push_back(n);
  if (fresh.empty()) {
    if (added) added->clear();
    return Status::OK();
  }
  const int64_t now = static_cast<int64_t>(time(nullptr));
  Status s = Exec("BEGIN");
  if (!s.ok()) return s;
  {
    Stmt st(db_, "INSERT OR IGNORE INTO users(name, source, enabled_at) VALUES(?, ?, ?)");
    for (const std::string& n : fresh) {
      sqlite3_reset(st.get());
      st.Text(1, n);
      st.Text(2, source);
      st.Int(3, now);
      s = st.Done("sqlite: enabling a user");
      if (!s.ok()) break;
    }
  }
  if (!s.ok()) {
    (void)Exec("ROLLBACK");  // the error that made us roll back is reported
    return s;
  }
  s = Exec("COMMIT");
  if (!s.ok()) return s;
  for (const std::string& n : fresh) {
    UserRecord u;
    u.name = n;
    u.source = source;
    u.enabled_at = now;
    users_[n] = std::move(u);
  }
  if (added) *added = std::move(fresh);
  return Status::OK();
}

Status UserRegistry::Disable(const std::string& name) {
  if (users_.count(name) == 0) return Status::NotFound("user is not enabled", name);
  Stmt st(db_, "DELETE FROM users WHERE name = ?");
  st.Text(1, name);
  Status s = st.Done("sqlite: disabling a user");
  if (s.ok()) users_.erase(name);
  return s;
}

Status UserRegistry::RecordSync(const std::string& name, int64_t when_ms, const std::string& result,
                                int64_t pending_actions, const std::string& quick_token) {
  auto it = users_.find(name);
  if (it == users_.end()) return Status::NotFound("user is not enabled", name);
  const std::string token = quick_token.size() > kMaxQuickTokenBytes ? "" : quick_token;
  Stmt st(db_,
          "UPDATE users SET last_sync = ?, last_result = ?, pending_actions = ?, quick_token = ?"
          " WHERE name = ?");
  st.Int(1, when_ms);
  st.Text(2, result);
  st.Int(3, pending_actions);
  st.Text(4, token);
  st.Text(5, name);
  Status s = st.Done("sqlite: recording a sync");
  if (!s.ok()) return s;
  it->second.last_sync_ms = when_ms;
  it->second.last_result = result;
  it->second.pending_actions = pending_actions;
  it->second.quick_token = token;
  return Status::OK();
}

const UserRecord* UserRegistry::Find(const std::string& name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : &it->second;
}

}  // namespace mobilesync::agent
