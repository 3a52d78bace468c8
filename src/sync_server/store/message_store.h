// MessageStore: everything the reference server keeps per user, behind an
// interface so that a shared database (PostgreSQL) can replace the embedded
// SQLite default (docs/scaling.md).
//
// Model (seed 000, figures 2A/2C: the mobile device mail server):
//   * The remote inbox window: at most N messages (N per user), each with a
//     remote id the server assigns (1, 2, 3... per user, never reused) and a
//     state unread < read < trash < destroyed. A message leaves the window
//     either destroyed (a tombstone keeps its id so a late action on it is a
//     clean no-op) or unmapped by the garbage collector (it stays on the
//     organisation's side; only the pairing goes).
//   * The server-side action list: the changes made on the device since the
//     last sync, in order, each removed only when the agent acknowledged it.
//   * The outbox: mail composed on the device. Sent directly by SMTP, or
//     queued as a DELIVER action for the organisation's MTA at the next sync.
//   * The sync generation (0: never synchronised) and the insert keys the
//     agent used, so that a re-sent insert (after a crash between apply and
//     ack) gets the id of the first one instead of a second copy.
//
// Every mutating call is one transaction: it happens entirely or not at all,
// also across kill -9. REQUIRES: one thread at a time per store object.
#ifndef MOBILESYNC_SYNC_SERVER_STORE_MESSAGE_STORE_H_
#define MOBILESYNC_SYNC_SERVER_STORE_MESSAGE_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace mobilesync::server {

// Ordered by conflict precedence (seed 003: D > M > R > U): a higher value
// wins when both sides changed the same message since the last sync.
enum class MessageState : uint8_t {
  kUnread = 0,
  kRead = 1,
  kTrash = 2,
  kDestroyed = 3,
};
const char* MessageStateName(MessageState state);
bool ParseMessageState(const std::string& name, MessageState* state);

// Where a stored message is.
enum class Residence : uint8_t {
  kWindow = 0,     // in the remote inbox window
  kUnmapped = 1,   // dropped by the garbage collector (or by the agent)
  kDestroyed = 2,  // destroyed on either side: tombstone only
};

struct MessageRecord {
  uint64_t id = 0;
  int64_t date = 0;  // internal date, unix seconds
  uint64_t size = 0;
  MessageState state = MessageState::kUnread;
  Residence residence = Residence::kWindow;
  std::string match_key;   // dedup key: the agent's insert key, or Message-ID
  std::string message_id;  // Message-ID header (may be empty)
  std::string guid;        // may be empty
  std::string subject;     // for the device's list
  std::string from;
  std::string body;        // RFC 5322 text; only filled by GetMessage
};

enum class ActionKind : uint8_t {
  kInsert = 1,       // new mail on the mobile side
  kMarkRead = 2,
  kMarkUnread = 3,
  kTrash = 4,
  kRestore = 5,
  kDestroy = 6,
  kUnmap = 7,        // left the window (garbage collector)
  kDeliver = 8,      // composed on the device: submit through the organisation
  kFiledAsSent = 9,  // sent from the device directly: file in Sent
};
const char* ActionKindName(ActionKind kind);

// One entry of the server's action list.
struct ServerAction {
  uint64_t seq = 0;  // position in the list: increasing, never reused
  ActionKind kind = ActionKind::kInsert;
  uint64_t remote_id = 0;  // the message (or outbox item for kDeliver)
  MessageState state = MessageState::kUnread;  // the state after the change
};

// An action from the agent, already decoded from the wire.
struct AgentAction {
  ActionKind kind = ActionKind::kInsert;
  uint64_t remote_id = 0;   // every kind but kInsert/kFiledAsSent
  std::string insert_key;   // kInsert/kFiledAsSent: idempotency key
  int64_t date = 0;
  MessageState state = MessageState::kUnread;  // kInsert: initial state
  std::string message_id;
  std::string guid;
  std::string body;         // kInsert/kFiledAsSent
};

enum class ApplyOutcome : uint8_t {
  kApplied,        // done now
  kAlreadyApplied, // a re-sent insert: *assigned_id is the first one's id
  kNoop,           // the message left the window or was destroyed
  kSuperseded,     // a device change of higher precedence won
  kUnknownId,      // never a message of this user: permanent failure
};
const char* ApplyOutcomeName(ApplyOutcome outcome);

struct ApplyResult {
  ApplyOutcome outcome = ApplyOutcome::kApplied;
  uint64_t assigned_id = 0;             // kInsert/kFiledAsSent
  std::vector<uint64_t> collected;      // ids the garbage collector unmapped
};

struct UserInfo {
  std::string user;
  uint32_t window_size = 0;    // N
  uint32_t window_count = 0;   // messages in the window now
  uint64_t generation = 0;     // 0: never synchronised
  uint64_t pending_actions = 0;
  uint64_t last_action_seq = 0;  // highest seq ever recorded
};

struct OutboxItem {
  uint64_t id = 0;
  std::string to;
  std::string subject;
  std::string message;  // the whole RFC 5322 text
  bool via_sync = false;
  bool done = false;    // sent by SMTP, or acknowledged DELIVER
};

class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // Creates the user with window N if unknown; otherwise sets N when it
  // differs (and runs the garbage collector on a smaller N).
  [[nodiscard]] virtual Status EnsureUser(const std::string& user,
                                          uint32_t window_size) = 0;
  // NotFound for an unknown user.
  [[nodiscard]] virtual Status GetUser(const std::string& user, UserInfo* out) = 0;

  // The window, newest first (date, then id), without bodies.
  [[nodiscard]] virtual Status ListWindow(const std::string& user,
                                          std::vector<MessageRecord>* out) = 0;
  // One message with its body. NotFound unless it is in the window.
  [[nodiscard]] virtual Status GetMessage(const std::string& user, uint64_t id,
                                          MessageRecord* out) = 0;

  // --- The device side ------------------------------------------------------
  // New mail on the mobile side: stored, recorded as an insert, then the
  // garbage collector runs. *id receives the new id.
  [[nodiscard]] virtual Status DeviceInsert(const std::string& user,
                                            const std::string& message,
                                            int64_t date, uint64_t* id) = 0;
  // The device user changed a message's state (kDestroyed destroys it).
  // NotFound for an id not in the window. No action when nothing changes.
  [[nodiscard]] virtual Status DeviceSetState(const std::string& user, uint64_t id,
                                              MessageState state) = 0;
  // Back from Trash to the state it had before. NotFound for an id not in
  // the window; FailedPrecondition-like InvalidArgument when not in Trash.
  [[nodiscard]] virtual Status DeviceRestore(const std::string& user, uint64_t id) = 0;
  // Mail composed on the device. via_sync: queued as a DELIVER action;
  // otherwise recorded for SMTP and as FILED_AS_SENT once MarkOutboxSent.
  [[nodiscard]] virtual Status DeviceCompose(const std::string& user,
                                             const OutboxItem& item, uint64_t* id) = 0;
  [[nodiscard]] virtual Status GetOutboxItem(const std::string& user, uint64_t id,
                                             OutboxItem* out) = 0;
  // A direct send went out: mark it done and record FILED_AS_SENT.
  [[nodiscard]] virtual Status MarkOutboxSent(const std::string& user, uint64_t id) = 0;

  // --- The agent side -------------------------------------------------------
  // Applies one agent action, idempotently (see ApplyOutcome).
  [[nodiscard]] virtual Status ApplyAgentAction(const std::string& user,
                                                const AgentAction& action,
                                                ApplyResult* result) = 0;
  // The action list in order, at most `limit` entries with seq > after_seq.
  [[nodiscard]] virtual Status PendingActions(const std::string& user, uint64_t after_seq,
                                              size_t limit,
                                              std::vector<ServerAction>* out) = 0;
  // The agent acknowledged (or permanently refused) action `seq`: remove it.
  // A DELIVER's outbox item is marked done. Idempotent.
  [[nodiscard]] virtual Status RemoveAction(const std::string& user, uint64_t seq) = 0;
  // End of an initial sync: a new generation, and the action list entries
  // up to `through_seq` (the last one when the session began: those the
  // list comparison subsumed) are dropped, all but DELIVER. Returns it.
  [[nodiscard]] virtual Status CommitInitialSync(const std::string& user,
                                                 uint64_t through_seq,
                                                 uint64_t* generation) = 0;
  // Runs the garbage collector now (normally implied by inserts).
  [[nodiscard]] virtual Status CollectGarbage(const std::string& user,
                                              std::vector<uint64_t>* collected) = 0;

  // Checks the store's invariants (integrity, window <= N, every action's
  // message exists). For tests and `--check`.
  [[nodiscard]] virtual Status Check() = 0;

  // Group commit. Between BeginBatch and EndBatch the calls above keep their
  // changes in one open transaction (a failing call still undoes only its
  // own); EndBatch makes them all durable at once (one fsync instead of one
  // per call) or, when it fails, none of them. The caller must not tell
  // anyone about a change made in a batch (acknowledge it) before EndBatch
  // returned OK.
  [[nodiscard]] virtual Status BeginBatch() = 0;
  [[nodiscard]] virtual Status EndBatch() = 0;
};

// Small helpers shared by the implementations and the device API.
// The value of a header in an RFC 5322 message (first occurrence, unfolded,
// at most 998 bytes), or "".
std::string HeaderValue(const std::string& message, const std::string& name);

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_STORE_MESSAGE_STORE_H_
