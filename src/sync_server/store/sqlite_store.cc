#include "sync_server/store/sqlite_store.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

namespace mobilesync::server {

namespace {

// Prepared statements kept for reuse, per connection and SQL text. Preparing
// costs more than running most of our statements (an initial sync of 10,000
// messages prepared ~60,000 of them). The server is single-threaded.
using StatementCache = std::unordered_map<std::string, sqlite3_stmt*>;
std::map<sqlite3*, StatementCache>& Statements() {
  static auto* cache = new std::map<sqlite3*, StatementCache>();
  return *cache;
}

}  // namespace

void SqliteDeleter::operator()(sqlite3* db) const {
  auto it = Statements().find(db);
  if (it != Statements().end()) {
    for (auto& [sql, stmt] : it->second) sqlite3_finalize(stmt);
    Statements().erase(it);
  }
  sqlite3_close_v2(db);
}

// A prepared statement: taken from the connection's cache (or prepared),
// reset and given back when it goes out of scope. A statement in use is not
// in the cache, so the same SQL may run nested.
class SqliteStore::Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db), sql_(sql) {
    StatementCache& cache = Statements()[db];
    auto it = cache.find(sql_);
    if (it != cache.end()) {
      stmt_ = it->second;
      cache.erase(it);
      rc_ = SQLITE_OK;
    } else {
      rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    }
  }
  ~Stmt() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    StatementCache& cache = Statements()[db_];
    if (rc_ == SQLITE_OK || rc_ == SQLITE_DONE || rc_ == SQLITE_ROW) {
      if (cache.emplace(std::move(sql_), stmt_).second) return;
    }
    sqlite3_finalize(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, ++index_, v);
    return *this;
  }
  Stmt& BindU(uint64_t v) { return Bind(static_cast<int64_t>(v)); }
  Stmt& Bind(const std::string& v) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text(stmt_, ++index_, v.data(), static_cast<int>(v.size()),
                              SQLITE_TRANSIENT);
    }
    return *this;
  }
  Stmt& BindBlob(const std::string& v) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_blob(stmt_, ++index_, v.data(), static_cast<int>(v.size()),
                              SQLITE_TRANSIENT);
    }
    return *this;
  }
  // Steps once: true with a row, false when done; *s holds any error.
  bool Step(Status* s) {
    if (rc_ != SQLITE_OK) {
      *s = Status::IOError("sqlite prepare/bind", sqlite3_errmsg(db_));
      return false;
    }
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) {
      rc_ = rc;
      *s = Status::IOError("sqlite step", sqlite3_errmsg(db_));
    }
    return false;
  }
  // Runs a statement that returns no rows.
  Status Run() {
    Status s;
    while (Step(&s)) {
    }
    return s;
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  uint64_t UInt(int col) const { return static_cast<uint64_t>(Int(col)); }
  std::string Text(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
  }

 private:
  sqlite3* db_;
  std::string sql_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
  int index_ = 0;
};

// BEGIN IMMEDIATE now, ROLLBACK unless Commit() succeeded: one call of the
// store is all or nothing, whatever path it leaves by. Inside a batch
// (BeginBatch) the same with a savepoint of the batch's transaction.
class SqliteStore::Txn {
 public:
  explicit Txn(SqliteStore* store) : store_(store), nested_(store->in_batch_) {
    begun_ = store_->Exec(nested_ ? "SAVEPOINT call" : "BEGIN IMMEDIATE");
  }
  ~Txn() {
    // Nothing to report to: the caller already returns the error that made
    // us roll back.
    if (!begun_.ok() || done_) return;
    if (nested_) {
      (void)store_->Exec("ROLLBACK TO call");
      (void)store_->Exec("RELEASE call");
    } else {
      (void)store_->Exec("ROLLBACK");
    }
  }
  const Status& begun() const { return begun_; }
  Status Commit(Status s) {
    if (!s.ok()) return s;
    s = store_->Exec(nested_ ? "RELEASE call" : "COMMIT");
    done_ = s.ok();
    return s;
  }

 private:
  SqliteStore* store_;
  bool nested_;
  Status begun_;
  bool done_ = false;
};

Status SqliteStore::BeginBatch() {
  if (in_batch_) return Status::InvalidArgument("a batch is already open");
  Status s = Exec("BEGIN IMMEDIATE");
  in_batch_ = s.ok();
  return s;
}

Status SqliteStore::EndBatch() {
  if (!in_batch_) return Status::OK();
  in_batch_ = false;
  Status s = Exec("COMMIT");
  if (!s.ok()) (void)Exec("ROLLBACK");
  return s;
}

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS users(
  user TEXT PRIMARY KEY,
  window_size INTEGER NOT NULL,
  generation INTEGER NOT NULL DEFAULT 0,
  next_id INTEGER NOT NULL DEFAULT 1,
  next_seq INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS messages(
  user TEXT NOT NULL,
  id INTEGER NOT NULL,
  date INTEGER NOT NULL,
  size INTEGER NOT NULL,
  state INTEGER NOT NULL,
  prev_state INTEGER NOT NULL DEFAULT 1,
  residence INTEGER NOT NULL,
  match_key TEXT NOT NULL DEFAULT '',
  message_id TEXT NOT NULL DEFAULT '',
  guid TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL DEFAULT '',
  sender TEXT NOT NULL DEFAULT '',
  body BLOB,
  UNIQUE(user, id));
CREATE INDEX IF NOT EXISTS messages_window ON messages(user, residence, date, id);
CREATE TABLE IF NOT EXISTS actions(
  user TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  remote_id INTEGER NOT NULL,
  state INTEGER NOT NULL,
  PRIMARY KEY(user, seq));
CREATE INDEX IF NOT EXISTS actions_by_id ON actions(user, remote_id);
CREATE TABLE IF NOT EXISTS agent_keys(
  user TEXT NOT NULL,
  insert_key TEXT NOT NULL,
  remote_id INTEGER NOT NULL,
  PRIMARY KEY(user, insert_key));
CREATE TABLE IF NOT EXISTS outbox(
  user TEXT NOT NULL,
  id INTEGER NOT NULL,
  to_addr TEXT NOT NULL,
  subject TEXT NOT NULL,
  message BLOB NOT NULL,
  via_sync INTEGER NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(user, id));
CREATE TABLE IF NOT EXISTS sent(
  user TEXT NOT NULL,
  id INTEGER NOT NULL,
  insert_key TEXT NOT NULL,
  body BLOB NOT NULL,
  UNIQUE(user, insert_key));
)sql";

ActionKind StateChangeKind(MessageState from, MessageState to) {
  if (to == MessageState::kTrash) return ActionKind::kTrash;
  if (from == MessageState::kTrash) return ActionKind::kRestore;
  return to == MessageState::kRead ? ActionKind::kMarkRead : ActionKind::kMarkUnread;
}

}  // namespace

const char* MessageStateName(MessageState state) {
  switch (state) {
    case MessageState::kUnread: return "unread";
    case MessageState::kRead: return "read";
    case MessageState::kTrash: return "trash";
    case MessageState::kDestroyed: return "destroyed";
  }
  return "?";
}

bool ParseMessageState(const std::string& name, MessageState* state) {
  for (MessageState s : {MessageState::kUnread, MessageState::kRead, MessageState::kTrash,
                         MessageState::kDestroyed}) {
    if (name == MessageStateName(s)) {
      *state = s;
      return true;
    }
  }
  return false;
}

const char* ActionKindName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kInsert: return "insert";
    case ActionKind::kMarkRead: return "mark-read";
    case ActionKind::kMarkUnread: return "mark-unread";
    case ActionKind::kTrash: return "trash";
    case ActionKind::kRestore: return "restore";
    case ActionKind::kDestroy: return "destroy";
    case ActionKind::kUnmap: return "unmap";
    case ActionKind::kDeliver: return "deliver";
    case ActionKind::kFiledAsSent: return "filed-as-sent";
  }
  return "?";
}

const char* ApplyOutcomeName(ApplyOutcome outcome) {
  switch (outcome) {
    case ApplyOutcome::kApplied: return "applied";
    case ApplyOutcome::kAlreadyApplied: return "already-applied";
    case ApplyOutcome::kNoop: return "noop";
    case ApplyOutcome::kSuperseded: return "superseded";
    case ApplyOutcome::kUnknownId: return "unknown-id";
  }
  return "?";
}

std::string HeaderValue(const std::string& message, const std::string& name) {
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find('\n', pos);
    if (eol == std::string::npos) eol = message.size();
    std::string_view line(message.data() + pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section
    if (line.size() > name.size() && line[name.size()] == ':' &&
        strncasecmp(line.data(), name.c_str(), name.size()) == 0) {
      std::string value(line.substr(name.size() + 1));
      // Unfold continuation lines.
      size_t next = eol + 1;
      while (next < message.size() && (message[next] == ' ' || message[next] == '\t')) {
        size_t e = message.find('\n', next);
        if (e == std::string::npos) e = message.size();
        std::string_view cont(message.data() + next, e - next);
        if (!cont.empty() && cont.back() == '\r') cont.remove_suffix(1);
        value += cont;  // unfolding removes the CRLF, keeps the space
        next = e + 1;
      }
      size_t b = value.find_first_not_of(" \t");
      size_t e = value.find_last_not_of(" \t");
      value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
      if (value.size() > 998) value.resize(998);
      return value;
    }
    pos = eol + 1;
  }
  return "";
}

SqliteStore::SqliteStore(SqlitePtr db, std::string path)
    : db_(std::move(db)), path_(std::move(path)) {}

SqliteStore::~SqliteStore() = default;

Status SqliteStore::Open(const std::string& path, std::unique_ptr<SqliteStore>* out) {
  // Create the file ourselves so that it is 0600 from the first byte: it
  // holds users' mail.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("cannot open database " + path, errno);
  close(fd);
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqlitePtr db(raw);
  if (rc != SQLITE_OK) {
    return Status::IOError("cannot open database " + path,
                           raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(db), path));
  sqlite3_busy_timeout(store->db_.get(), 5000);
  // WAL: readers never block the writer, and a commit is one append.
  // synchronous=FULL: a commit is on disk before the call returns, so an
  // acknowledged action survives a power cut too, not only kill -9.
  Status s = store->Exec("PRAGMA journal_mode=WAL");
  if (s.ok()) s = store->Exec("PRAGMA synchronous=FULL");
  if (s.ok()) s = store->Exec("PRAGMA foreign_keys=ON");
  int version = 0;
  if (s.ok()) {
    Stmt q(store->db_.get(), "PRAGMA user_version");
    if (q.Step(&s)) version = static_cast<int>(q.Int(0));
  }
  if (s.ok() && version > kSchemaVersion) {
    s = Status::Corruption(path, "database schema is newer than this server (version " +
                                     std::to_string(version) + ")");
  }
  if (s.ok()) s = store->Exec(kSchema);
  if (s.ok() && version < kSchemaVersion) {
    s = store->Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
  }
  if (!s.ok()) return Status::IOError("database " + path, s.message());
  *out = std::move(store);
  return Status::OK();
}

Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status::IOError("sqlite", msg);
  }
  return Status::OK();
}

Status SqliteStore::LoadUser(const std::string& user, UserInfo* out) {
  Status s;
  Stmt q(db_.get(), "SELECT window_size, generation, next_seq FROM users WHERE user=?");
  q.Bind(user);
  if (!q.Step(&s)) return s.ok() ? Status::NotFound("unknown user", user) : s;
  out->user = user;
  out->window_size = static_cast<uint32_t>(q.Int(0));
  out->generation = q.UInt(1);
  out->last_action_seq = q.UInt(2) - 1;
  Stmt c(db_.get(), "SELECT count(*) FROM messages WHERE user=? AND residence=0");
  c.Bind(user);
  if (c.Step(&s)) out->window_count = static_cast<uint32_t>(c.Int(0));
  if (!s.ok()) return s;
  Stmt a(db_.get(), "SELECT count(*) FROM actions WHERE user=?");
  a.Bind(user);
  if (a.Step(&s)) out->pending_actions = a.UInt(0);
  return s;
}

Status SqliteStore::NextId(const std::string& user, uint64_t* id) {
  Status s;
  Stmt q(db_.get(), "UPDATE users SET next_id=next_id+1 WHERE user=? RETURNING next_id-1");
  q.Bind(user);
  if (!q.Step(&s)) return s.ok() ? Status::NotFound("unknown user", user) : s;
  *id = q.UInt(0);
  return Status::OK();
}

Status SqliteStore::RecordAction(const std::string& user, ActionKind kind, uint64_t remote_id,
                                 MessageState state) {
  Status s;
  uint64_t seq = 0;
  {
    Stmt q(db_.get(), "UPDATE users SET next_seq=next_seq+1 WHERE user=? RETURNING next_seq-1");
    q.Bind(user);
    if (!q.Step(&s)) return s.ok() ? Status::NotFound("unknown user", user) : s;
    seq = q.UInt(0);
  }
  Stmt ins(db_.get(), "INSERT INTO actions(user, seq, kind, remote_id, state) VALUES(?,?,?,?,?)");
  ins.Bind(user)
      .BindU(seq)
      .Bind(static_cast<int64_t>(kind))
      .BindU(remote_id)
      .Bind(static_cast<int64_t>(state));
  return ins.Run();
}

Status SqliteStore::EnsureUser(const std::string& user, uint32_t window_size) {
  if (window_size == 0) return Status::InvalidArgument("window size 0", user);
  Txn txn(this);
  Status s = txn.begun();
  UserInfo info;
  if (s.ok()) s = LoadUser(user, &info);
  if (s.IsNotFound()) {
    Stmt q(db_.get(), "INSERT INTO users(user, window_size) VALUES(?,?)");
    q.Bind(user).Bind(static_cast<int64_t>(window_size));
    s = q.Run();
  } else if (s.ok() && info.window_size != window_size) {
    Stmt q(db_.get(), "UPDATE users SET window_size=? WHERE user=?");
    q.Bind(static_cast<int64_t>(window_size)).Bind(user);
    s = q.Run();
    std::vector<uint64_t> collected;
    if (s.ok()) s = GcLocked(user, &collected);
  }
  return txn.Commit(std::move(s));
}

Status SqliteStore::GetUser(const std::string& user, UserInfo* out) {
  Txn txn(this);
  Status s = txn.begun();
  if (s.ok()) s = LoadUser(user, out);
  return txn.Commit(std::move(s));
}

namespace {
constexpr const char* kMessageColumns =
    "id, date, size, state, residence, match_key, message_id, guid, subject, sender";
}  // namespace

Status SqliteStore::ListWindow(const std::string& user, std::vector<MessageRecord>* out) {
  out->clear();
  Status s;
  Stmt q(db_.get(), (std::string("SELECT ") + kMessageColumns +
                     " FROM messages WHERE user=? AND residence=0 ORDER BY date DESC, id DESC")
                        .c_str());
  q.Bind(user);
  while (q.Step(&s)) {
    MessageRecord m;
    m.id = q.UInt(0);
    m.date = q.Int(1);
    m.size = q.UInt(2);
    m.state = static_cast<MessageState>(q.Int(3));
    m.residence = static_cast<Residence>(q.Int(4));
    m.match_key = q.Text(5);
    m.message_id = q.Text(6);
    m.guid = q.Text(7);
    m.subject = q.Text(8);
    m.from = q.Text(9);
    out->push_back(std::move(m));
  }
  return s;
}

Status SqliteStore::LoadMessage(const std::string& user, uint64_t id, bool with_body, bool* found,
                                MessageRecord* out) {
  Status s;
  Stmt q(db_.get(), (std::string("SELECT ") + kMessageColumns +
                     ", prev_state, body FROM messages WHERE user=? AND id=?")
                        .c_str());
  q.Bind(user).BindU(id);
  *found = q.Step(&s);
  if (!*found) return s;
  out->id = q.UInt(0);
  out->date = q.Int(1);
  out->size = q.UInt(2);
  out->state = static_cast<MessageState>(q.Int(3));
  out->residence = static_cast<Residence>(q.Int(4));
  out->match_key = q.Text(5);
  out->message_id = q.Text(6);
  out->guid = q.Text(7);
  out->subject = q.Text(8);
  out->from = q.Text(9);
  if (with_body) out->body = q.Text(11);
  return Status::OK();
}

Status SqliteStore::GetMessage(const std::string& user, uint64_t id, MessageRecord* out) {
  bool found = false;
  Status s = LoadMessage(user, id, true, &found, out);
  if (s.ok() && (!found || out->residence != Residence::kWindow)) {
    return Status::NotFound("no such message", std::to_string(id));
  }
  return s;
}

Status SqliteStore::SetResidence(const std::string& user, uint64_t id, Residence residence) {
  // A message outside the window keeps only its id and state: the server
  // holds N messages' worth of mail, not more.
  Stmt q(db_.get(), residence == Residence::kWindow
                        ? "UPDATE messages SET residence=? WHERE user=? AND id=?"
                        : "UPDATE messages SET residence=?, body=NULL WHERE user=? AND id=?");
  q.Bind(static_cast<int64_t>(residence)).Bind(user).BindU(id);
  Status s = q.Run();
  if (s.ok() && residence == Residence::kUnmapped) {
    // Out of the window, the message may come back: a later INSERT of it
    // (the agent's pull, when it is among the newest again) must put it in
    // the window, not be answered "already applied" with the old id. A
    // destroyed message keeps its key: a replayed insert must not revive it.
    Stmt k(db_.get(), "DELETE FROM agent_keys WHERE user=? AND remote_id=?");
    k.Bind(user).BindU(id);
    s = k.Run();
  }
  if (s.ok() && residence == Residence::kDestroyed) {
    Stmt d(db_.get(), "UPDATE messages SET state=3 WHERE user=? AND id=?");
    d.Bind(user).BindU(id);
    s = d.Run();
  }
  return s;
}

Status SqliteStore::DeleteActionsFor(const std::string& user, uint64_t id,
                                     bool state_changes_only) {
  Stmt q(db_.get(), state_changes_only
                        ? "DELETE FROM actions WHERE user=? AND remote_id=? AND kind IN (2,3,4,5)"
                        : "DELETE FROM actions WHERE user=? AND remote_id=? AND kind<>8");
  q.Bind(user).BindU(id);
  return q.Run();
}

Status SqliteStore::GcLocked(const std::string& user, std::vector<uint64_t>* collected) {
  // Keep the N newest; unmap the older ones, oldest first, except a message
  // whose INSERT the agent has not acknowledged yet: dropping it would lose
  // it to the organisation's side (the window may then exceed N until the
  // next sync).
  Status s;
  uint32_t window = 0;
  {
    Stmt q(db_.get(), "SELECT window_size, next_id FROM users WHERE user=?");
    q.Bind(user);
    if (!q.Step(&s)) return s.ok() ? Status::NotFound("unknown user", user) : s;
    window = static_cast<uint32_t>(q.Int(0));
    // This runs after every insert. Fewer ids ever given out than N: the
    // window cannot be over N (an initial sync into an empty store would
    // otherwise walk the whole window at every insert).
    if (q.Int(1) - 1 <= static_cast<int64_t>(window)) return Status::OK();
  }
  {
    // Not over N: nothing to collect, and no walk past N probing the
    // actions of every message there.
    Stmt c(db_.get(), "SELECT count(*) FROM messages WHERE user=? AND residence=0");
    c.Bind(user);
    if (!c.Step(&s)) return s;
    if (c.Int(0) <= static_cast<int64_t>(window)) return Status::OK();
  }
  std::vector<uint64_t> victims;  // newest first
  {
    Stmt q(db_.get(),
           "SELECT id, EXISTS(SELECT 1 FROM actions a WHERE a.user=?1 AND a.remote_id=m.id"
           " AND a.kind=1) FROM messages m WHERE user=?1 AND residence=0"
           " ORDER BY date DESC, id DESC LIMIT -1 OFFSET ?2");
    q.Bind(user).Bind(static_cast<int64_t>(window));
    while (q.Step(&s)) {
      if (q.Int(1) == 0) victims.push_back(q.UInt(0));
    }
    if (!s.ok()) return s;
  }
  for (auto it = victims.rbegin(); it != victims.rend() && s.ok(); ++it) {
    s = SetResidence(user, *it, Residence::kUnmapped);
    if (s.ok()) s = DeleteActionsFor(user, *it, true);
    if (s.ok()) s = RecordAction(user, ActionKind::kUnmap, *it, MessageState::kUnread);
    if (s.ok()) collected->push_back(*it);
  }
  return s;
}

Status SqliteStore::CollectGarbage(const std::string& user, std::vector<uint64_t>* collected) {
  Txn txn(this);
  Status s = txn.begun();
  if (s.ok()) s = GcLocked(user, collected);
  return txn.Commit(std::move(s));
}

Status SqliteStore::DeviceInsert(const std::string& user, const std::string& message, int64_t date,
                                 uint64_t* id) {
  Txn txn(this);
  Status s = txn.begun();
  if (s.ok()) s = NextId(user, id);
  std::string message_id = HeaderValue(message, "Message-ID");
  if (s.ok()) {
    Stmt q(db_.get(),
           "INSERT INTO messages(user, id, date, size, state, residence, match_key, message_id,"
           " subject, sender, body) VALUES(?,?,?,?,0,0,?,?,?,?,?)");
    q.Bind(user)
        .BindU(*id)
        .Bind(date)
        .BindU(message.size())
        .Bind(message_id)
        .Bind(message_id)
        .Bind(HeaderValue(message, "Subject"))
        .Bind(HeaderValue(message, "From"))
        .BindBlob(message);
    s = q.Run();
  }
  if (s.ok()) s = RecordAction(user, ActionKind::kInsert, *id, MessageState::kUnread);
  std::vector<uint64_t> collected;
  if (s.ok()) s = GcLocked(user, &collected);
  return txn.Commit(std::move(s));
}

Status SqliteStore::DeviceSetState(const std::string& user, uint64_t id, MessageState state) {
  Txn txn(this);
  Status s = txn.begun();
  MessageRecord m;
  bool found = false;
  if (s.ok()) s = LoadMessage(user, id, false, &found, &m);
  if (s.ok() && (!found || m.residence != Residence::kWindow)) {
    s = Status::NotFound("no such message", std::to_string(id));
  }
  if (!s.ok() || m.state == state) return txn.Commit(std::move(s));
  bool pending_insert = false;
  {
    Stmt q(db_.get(), "SELECT 1 FROM actions WHERE user=? AND remote_id=? AND kind=1");
    q.Bind(user).BindU(id);
    pending_insert = q.Step(&s);
  }
  if (s.ok() && state == MessageState::kDestroyed) {
    s = SetResidence(user, id, Residence::kDestroyed);
    // Destroyed before the organisation ever saw it: nothing to tell it.
    if (s.ok()) s = DeleteActionsFor(user, id, false);
    if (s.ok() && !pending_insert) s = RecordAction(user, ActionKind::kDestroy, id, state);
  } else if (s.ok()) {
    Stmt q(db_.get(),
           "UPDATE messages SET state=?, prev_state=CASE WHEN ?=2 THEN state ELSE prev_state END"
           " WHERE user=? AND id=?");
    q.Bind(static_cast<int64_t>(state)).Bind(static_cast<int64_t>(state)).Bind(user).BindU(id);
    s = q.Run();
    if (s.ok()) s = RecordAction(user, StateChangeKind(m.state, state), id, state);
  }
  return txn.Commit(std::move(s));
}

Status SqliteStore::DeviceRestore(const std::string& user, uint64_t id) {
  MessageState target = MessageState::kRead;
  {
    Txn txn(this);
    Status s = txn.begun();
    MessageRecord m;
    bool found = false;
    if (s.ok()) s = LoadMessage(user, id, false, &found, &m);
    if (s.ok() && (!found || m.residence != Residence::kWindow)) {
      s = Status::NotFound("no such message", std::to_string(id));
    }
    if (s.ok() && m.state != MessageState::kTrash) {
      s = Status::InvalidArgument("message is not in Trash", std::to_string(id));
    }
    if (s.ok()) {
      Stmt q(db_.get(), "SELECT prev_state FROM messages WHERE user=? AND id=?");
      q.Bind(user).BindU(id);
      if (q.Step(&s)) target = static_cast<MessageState>(q.Int(0));
    }
    s = txn.Commit(std::move(s));
    if (!s.ok()) return s;
  }
  if (target != MessageState::kUnread) target = MessageState::kRead;
  // Another transaction, but the same single thread: nothing can come in
  // between, and the state change records the RESTORE action.
  return DeviceSetState(user, id, target);
}

Status SqliteStore::DeviceCompose(const std::string& user, const OutboxItem& item, uint64_t* id) {
  Txn txn(this);
  Status s = txn.begun();
  if (s.ok()) s = NextId(user, id);
  if (s.ok()) {
    Stmt q(db_.get(),
           "INSERT INTO outbox(user, id, to_addr, subject, message, via_sync) VALUES(?,?,?,?,?,?)");
    q.Bind(user)
        .BindU(*id)
        .Bind(item.to)
        .Bind(item.subject)
        .BindBlob(item.message)
        .Bind(item.via_sync ? 1 : 0);
    s = q.Run();
  }
  if (s.ok() && item.via_sync) {
    s = RecordAction(user, ActionKind::kDeliver, *id, MessageState::kRead);
  }
  return txn.Commit(std::move(s));
}

Status SqliteStore::GetOutboxItem(const std::string& user, uint64_t id, OutboxItem* out) {
  Status s;
  Stmt q(db_.get(),
         "SELECT to_addr, subject, message, via_sync, done FROM outbox WHERE user=? AND id=?");
  q.Bind(user).BindU(id);
  if (!q.Step(&s)) return s.ok() ? Status::NotFound("no such outbox item", std::to_string(id)) : s;
  out->id = id;
  out->to = q.Text(0);
  out->subject = q.Text(1);
  out->message = q.Text(2);
  out->via_sync = q.Int(3) != 0;
  out->done = q.Int(4) != 0;
  return Status::OK();
}

Status SqliteStore::MarkOutboxSent(const std::string& user, uint64_t id) {
  Txn txn(this);
  Status s = txn.begun();
  bool changed = false;
  if (s.ok()) {
    Stmt q(db_.get(), "UPDATE outbox SET done=1 WHERE user=? AND id=? AND done=0 RETURNING id");
    q.Bind(user).BindU(id);
    changed = q.Step(&s);
  }
  // Sent from the device: the organisation files a copy in Sent.
  if (s.ok() && changed) s = RecordAction(user, ActionKind::kFiledAsSent, id, MessageState::kRead);
  return txn.Commit(std::move(s));
}

Status SqliteStore::ApplyStateLocked(const std::string& user, const AgentAction& a,
                                     ApplyResult* r) {
  MessageRecord m;
  bool found = false;
  Status s = LoadMessage(user, a.remote_id, false, &found, &m);
  if (!s.ok()) return s;
  if (!found) {
    r->outcome = ApplyOutcome::kUnknownId;
    return Status::OK();
  }
  if (a.kind == ActionKind::kDestroy) {
    if (m.residence == Residence::kDestroyed) {
      r->outcome = ApplyOutcome::kNoop;
      return Status::OK();
    }
    // A destroy wins every conflict: our pending changes of it are moot.
    s = DeleteActionsFor(user, a.remote_id, false);
    if (s.ok()) s = SetResidence(user, a.remote_id, Residence::kDestroyed);
    r->outcome = ApplyOutcome::kApplied;
    return s;
  }
  if (a.kind == ActionKind::kUnmap) {
    if (m.residence != Residence::kWindow) {
      r->outcome = ApplyOutcome::kNoop;
      return Status::OK();
    }
    s = DeleteActionsFor(user, a.remote_id, true);
    if (s.ok()) s = SetResidence(user, a.remote_id, Residence::kUnmapped);
    r->outcome = ApplyOutcome::kApplied;
    return s;
  }
  if (m.residence != Residence::kWindow) {
    r->outcome = ApplyOutcome::kNoop;
    return Status::OK();
  }
  MessageState target = a.state;
  if (a.kind == ActionKind::kMarkRead) target = MessageState::kRead;
  if (a.kind == ActionKind::kMarkUnread) target = MessageState::kUnread;
  if (a.kind == ActionKind::kTrash) target = MessageState::kTrash;
  if (a.kind == ActionKind::kRestore) {
    // Back to what it was before the trash (read when we never knew).
    Stmt q(db_.get(), "SELECT prev_state FROM messages WHERE user=? AND id=?");
    q.Bind(user).BindU(a.remote_id);
    target = q.Step(&s) ? static_cast<MessageState>(q.Int(0)) : MessageState::kRead;
    if (!s.ok()) return s;
    if (target == MessageState::kTrash || target == MessageState::kDestroyed) {
      target = MessageState::kRead;
    }
  }
  // A pending device change of the same message is a conflict: the state
  // of higher precedence wins (D > M > R > U).
  MessageState own = target;
  bool conflict = false;
  {
    Stmt q(db_.get(),
           "SELECT state FROM actions WHERE user=? AND remote_id=? AND kind IN (2,3,4,5)"
           " ORDER BY seq DESC LIMIT 1");
    q.Bind(user).BindU(a.remote_id);
    if (q.Step(&s)) {
      conflict = true;
      own = static_cast<MessageState>(q.Int(0));
    }
    if (!s.ok()) return s;
  }
  if (conflict && own > target) {
    r->outcome = ApplyOutcome::kSuperseded;
    return Status::OK();
  }
  // The agent's change won: ours must not travel back and overwrite it.
  if (conflict) s = DeleteActionsFor(user, a.remote_id, true);
  if (s.ok() && m.state != target) {
    Stmt q(db_.get(),
           "UPDATE messages SET state=?, prev_state=CASE WHEN ?=2 THEN state ELSE prev_state END"
           " WHERE user=? AND id=?");
    q.Bind(static_cast<int64_t>(target))
        .Bind(static_cast<int64_t>(target))
        .Bind(user)
        .BindU(a.remote_id);
    s = q.Run();
  }
  r->outcome = ApplyOutcome::kApplied;
  return s;
}

Status SqliteStore::ApplyAgentAction(const std::string& user, const AgentAction& a,
                                     ApplyResult* r) {
  *r = ApplyResult();
  Txn txn(this);
  Status s = txn.begun();
  if (s.ok()) {
    // The user must exist (LoadUser would also count the window and the
    // actions: two scans per action for nothing).
    Stmt q(db_.get(), "SELECT 1 FROM users WHERE user=?");
    q.Bind(user);
    if (!q.Step(&s) && s.ok()) s = Status::NotFound("unknown user", user);
  }
  if (!s.ok()) return s;
  switch (a.kind) {
    case ActionKind::kInsert:
    case ActionKind::kFiledAsSent: {
      if (a.insert_key.empty()) return Status::InvalidArgument("insert without insert key");
      // The record of applied inserts: a re-sent insert gets the first id.
      {
        Stmt q(db_.get(), "SELECT remote_id FROM agent_keys WHERE user=? AND insert_key=?");
        q.Bind(user).Bind(a.insert_key);
        if (q.Step(&s)) {
          r->outcome = ApplyOutcome::kAlreadyApplied;
          r->assigned_id = q.UInt(0);
          return txn.Commit(Status::OK());
        }
        if (!s.ok()) return s;
      }
      s = NextId(user, &r->assigned_id);
      if (s.ok()) {
        Stmt q(db_.get(), "INSERT INTO agent_keys(user, insert_key, remote_id) VALUES(?,?,?)");
        q.Bind(user).Bind(a.insert_key).BindU(r->assigned_id);
        s = q.Run();
      }
      if (s.ok() && a.kind == ActionKind::kFiledAsSent) {
        Stmt q(db_.get(), "INSERT INTO sent(user, id, insert_key, body) VALUES(?,?,?,?)");
        q.Bind(user).BindU(r->assigned_id).Bind(a.insert_key).BindBlob(a.body);
        s = q.Run();
      } else if (s.ok()) {
        MessageState st = a.state == MessageState::kDestroyed ? MessageState::kRead : a.state;
        Stmt q(db_.get(),
               "INSERT INTO messages(user, id, date, size, state, residence, match_key,"
               " message_id, guid, subject, sender, body) VALUES(?,?,?,?,?,0,?,?,?,?,?,?)");
        q.Bind(user)
            .BindU(r->assigned_id)
            .Bind(a.date)
            .BindU(a.body.size())
            .Bind(static_cast<int64_t>(st))
            .Bind(a.insert_key)
            .Bind(a.message_id)
            .Bind(a.guid)
            .Bind(HeaderValue(a.body, "Subject"))
            .Bind(HeaderValue(a.body, "From"))
            .BindBlob(a.body);
        s = q.Run();
        if (s.ok()) s = GcLocked(user, &r->collected);
      }
      r->outcome = ApplyOutcome::kApplied;
      break;
    }
    case ActionKind::kMarkRead:
    case ActionKind::kMarkUnread:
    case ActionKind::kTrash:
    case ActionKind::kRestore:
    case ActionKind::kDestroy:
    case ActionKind::kUnmap: s = ApplyStateLocked(user, a, r); break;
    case ActionKind::kDeliver: return Status::InvalidArgument("deliver is not an agent action");
  }
  return txn.Commit(std::move(s));
}

Status SqliteStore::PendingActions(const std::string& user, uint64_t after_seq, size_t limit,
                                   std::vector<ServerAction>* out) {
  out->clear();
  Status s;
  Stmt q(db_.get(),
         "SELECT seq, kind, remote_id, state FROM actions WHERE user=? AND seq>?"
         " ORDER BY seq LIMIT ?");
  q.Bind(user).BindU(after_seq).BindU(limit);
  while (q.Step(&s)) {
    ServerAction a;
    a.seq = q.UInt(0);
    a.kind = static_cast<ActionKind>(q.Int(1));
    a.remote_id = q.UInt(2);
    a.state = static_cast<MessageState>(q.Int(3));
    out->push_back(a);
  }
  return s;
}

Status SqliteStore::RemoveAction(const std::string& user, uint64_t seq) {
  Txn txn(this);
  Status s = txn.begun();
  int64_t kind = 0;
  uint64_t remote_id = 0;
  bool found = false;
  if (s.ok()) {
    Stmt q(db_.get(), "DELETE FROM actions WHERE user=? AND seq=? RETURNING kind, remote_id");
    q.Bind(user).BindU(seq);
    found = q.Step(&s);
    if (found) {
      kind = q.Int(0);
      remote_id = q.UInt(1);
    }
  }
  if (s.ok() && found && kind == static_cast<int64_t>(ActionKind::kDeliver)) {
    Stmt q(db_.get(), "UPDATE outbox SET done=1 WHERE user=? AND id=?");
    q.Bind(user).BindU(remote_id);
    s = q.Run();
  }
  return txn.Commit(std::move(s));
}

Status SqliteStore::CommitInitialSync(const std::string& user, uint64_t through_seq,
                                      uint64_t* generation) {
  Txn txn(this);
  Status s = txn.begun();
  UserInfo info;
  if (s.ok()) s = LoadUser(user, &info);
  uint64_t g = 0;
  // Random, not old+1: an agent whose state was restored from a backup must
  // never meet a generation it has seen before.
  while (s.ok() && (g == 0 || g == info.generation || g > (uint64_t{1} << 62))) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&g), sizeof g) != 1) {
      s = Status::IOError("RAND_bytes failed");
    }
    g &= (uint64_t{1} << 62) - 1;  // stays positive as an SQLite integer
  }
  if (s.ok()) {
    Stmt q(db_.get(), "UPDATE users SET generation=? WHERE user=?");
    q.BindU(g).Bind(user);
    s = q.Run();
  }
  if (s.ok()) {
    Stmt q(db_.get(), "DELETE FROM actions WHERE user=? AND seq<=? AND kind<>8");
    q.Bind(user).BindU(through_seq);
    s = q.Run();
  }
  if (s.ok()) *generation = g;
  return txn.Commit(std::move(s));
}

Status SqliteStore::GetSent(const std::string& user, uint64_t id, std::string* body) {
  Status s;
  Stmt q(db_.get(), "SELECT body FROM sent WHERE user=? AND id=?");
  q.Bind(user).BindU(id);
  if (!q.Step(&s)) return s.ok() ? Status::NotFound("no such sent message") : s;
  *body = q.Text(0);
  return Status::OK();
}

Status SqliteStore::Check() {
  Status s;
  {
    Stmt q(db_.get(), "PRAGMA integrity_check");
    if (q.Step(&s) && q.Text(0) != "ok") return Status::Corruption(path_, q.Text(0));
    if (!s.ok()) return s;
  }
  // Every action names an existing message or outbox item of its user, and
  // every id is below the user's counter.
  static const char* const kChecks[][2] = {
      {"SELECT count(*) FROM actions a WHERE kind<>8 AND NOT EXISTS("
       "SELECT 1 FROM messages m WHERE m.user=a.user AND m.id=a.remote_id) AND kind<>9",
       "action on a missing message"},
      {"SELECT count(*) FROM actions a WHERE kind IN (8,9) AND NOT EXISTS("
       "SELECT 1 FROM outbox o WHERE o.user=a.user AND o.id=a.remote_id)",
       "deliver/sent action without its outbox item"},
      {"SELECT count(*) FROM messages m JOIN users u USING(user) WHERE m.id>=u.next_id",
       "message id above the user's counter"},
      {"SELECT count(*) FROM agent_keys k WHERE NOT EXISTS(SELECT 1 FROM messages m WHERE "
       "m.user=k.user AND m.id=k.remote_id) AND NOT EXISTS(SELECT 1 FROM sent s WHERE "
       "s.user=k.user AND s.id=k.remote_id)",
       "insert key without its message"},
      {"SELECT count(*) FROM messages WHERE residence<>0 AND body IS NOT NULL",
       "a body kept outside the window"},
  };
  for (const auto& check : kChecks) {
    Stmt q(db_.get(), check[0]);
    if (q.Step(&s) && q.Int(0) != 0) {
      return Status::Corruption(path_,
                                std::string(check[1]) + " (" + std::to_string(q.Int(0)) + ")");
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace mobilesync::server
