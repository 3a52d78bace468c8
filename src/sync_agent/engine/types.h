// The sync engine's vocabulary: identifiers, message states, actions and the
// engine-level frames the agent and the server exchange.
//
// Model (see docs/engine.md):
//   * A local message is named by (mailbox, UIDVALIDITY, UID); a remote one by
//     the 64-bit id the server assigned. The IdMap pairs them for every message
//     in the remote window; an unmapped message is not on the remote side.
//   * Both sides also know a message's match key: an opaque string both sides
//     store with the message (the Message-ID header, or a GUID when there is
//     none). It lets a re-run find what an interrupted run already copied, so
//     nothing is ever inserted twice.
//   * A message's syncable state is one of Unread < Read < Trash < Destroyed;
//     the order is the conflict precedence of seed 003 (U < R < M < D).
//
// These types are plain C++ on purpose: the wire layer (src/wire) translates
// Frame to and from protobuf; the engine never sees bytes or sockets.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_TYPES_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_TYPES_H_

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

namespace mobilesync::engine {

// A server-assigned message id. 0 is never assigned.
using RemoteId = uint64_t;
inline constexpr RemoteId kNoRemoteId = 0;

// Which pairing of the two mailboxes a sync state belongs to. 0 means "never
// synchronised"; the initial sync sets both sides to the same new value.
using SyncGeneration = uint64_t;

struct LocalId {
  std::string mailbox;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;  // 0: no message

  bool valid() const { return uid != 0; }
  // Any strict order will do (ids are map keys); the uid goes first because
  // comparing it is cheap and almost always decides.
  friend bool operator<(const LocalId& a, const LocalId& b) {
    return std::tie(a.uid, a.uidvalidity, a.mailbox) < std::tie(b.uid, b.uidvalidity, b.mailbox);
  }
  friend bool operator==(const LocalId& a, const LocalId& b) {
    return a.uid == b.uid && a.uidvalidity == b.uidvalidity && a.mailbox == b.mailbox;
  }
  friend bool operator!=(const LocalId& a, const LocalId& b) { return !(a == b); }
};
// "INBOX/1234/17" (for logs and for ActionWindow subjects).
std::string ToString(const LocalId& id);

// Ordered by conflict precedence: a higher value wins (seed 003, D > M > R > U).
enum class MessageState : uint8_t {
  kUnread = 0,
  kRead = 1,
  kTrash = 2,      // "marked for delete": in Trash, still restorable
  kDestroyed = 3,  // gone for good
};
const char* MessageStateName(MessageState state);
// Seed 003's one-letter state: 'U', 'R', 'M' or 'D'.
char MessageStateLetter(MessageState state);

// What the engine needs to know about a message (never its body).
struct MessageMeta {
  std::string match_key;  // Message-ID or GUID, see above
  int64_t date = 0;       // received date, seconds since the epoch
  MessageState state = MessageState::kUnread;
  bool flagged = false;  // \Flagged: may keep a message in the window
  // Arrival order among messages of the same date, higher is newer (the
  // local UID: mail delivered within one second has equal dates). 0: unknown.
  uint64_t order = 0;
};

struct LocalMessage {
  LocalId id;
  MessageMeta meta;
};

struct RemoteMessage {
  RemoteId id = kNoRemoteId;
  MessageMeta meta;
};

enum class ActionKind : uint8_t {
  kInsert,    // a new message: meta describes it
  kMarkRead,  // state changes: meta.state is the state after the change
  kMarkUnread,
  kMoveToTrash,
  kRestoreFromTrash,
  kDestroy,      // destroyed for good
  kUnmap,        // left the remote window; the local copy stays
  kDeliver,      // server -> agent: submit this composed message via the MTA
  kFiledAsSent,  // file this sent message in the other side's Sent folder
};
const char* ActionKindName(ActionKind kind);
// True for the four kinds that only change a message's state.
bool IsStateChange(ActionKind kind);
// The state-change kind that reaches `to` from `from` (e.g. Trash -> Read is
// kRestoreFromTrash). REQUIRES: to is not kDestroyed.
ActionKind StateChangeKind(MessageState from, MessageState to);

// One entry of an action list (agent: recorded by the plugin; server: by the
// remote store), or an action the engine made up itself (normalise, pull,
// initial-sync state merge), which has seq 0.
struct Action {
  uint64_t seq = 0;  // position in the originating side's list; 0: not listed
  ActionKind kind = ActionKind::kInsert;
  LocalId local;                  // subject on the agent side, when known
  RemoteId remote = kNoRemoteId;  // subject on the server side, when known
  MessageMeta meta;               // kInsert/kDeliver/kFiledAsSent: the message;
                                  // state changes and kDestroy: meta.state is the new state
};
std::string ToString(const Action& action);

// How the receiver of an action disposed of it.
enum class AckOutcome : uint8_t {
  kApplied,     // done (or already done: actions are idempotent)
  kNoop,        // the message is not there (destroyed or left the window):
                // nothing to do, reported for the log
  kSuperseded,  // a conflicting change of higher precedence won
  kRejected,    // can never be applied (e.g. too large): drop it, report it
};
const char* AckOutcomeName(AckOutcome outcome);

// Which state wins when both sides changed a message since the last sync; a
// per-user setting (see precedence.h). The agent announces it in kHello.
enum class ConflictPolicy : uint8_t {
  kStatePrecedence,  // D > M > R > U (default)
  kMailboxWins,      // the local (Dovecot) state wins
  kHandheldWins,     // the remote (mobile) state wins
};

// Engine-level protocol frames (the wire layer maps them to protobuf).
enum class FrameKind : uint8_t {
  // agent -> server
  kHello,        // generation = agent's; conflict = the user's policy
  kListRequest,  // send me the window
  kFetch,        // ids: send me these messages (initial sync)
  kSwap,         // my list is done: send me yours (re-sent on time-out:
                 // "re-send what I have not acknowledged")
  kCommit,       // generation = the new pairing (end of initial sync)
  // server -> agent
  kHelloReply,    // generation = server's; window_size; window_count
  kList,          // messages = the window
  kFetched,       // messages[0] (absent when missing = true)
  kSyncComplete,  // server's list is empty (answer to kSwap)
  kCommitAck,
  // both directions
  kAction,  // tag + action
  kAck,     // tag + outcome (+ remote id for an insert)
  kNack,    // tag: could not apply now, try again later
};
const char* FrameKindName(FrameKind kind);

struct Frame {
  FrameKind kind = FrameKind::kHello;
  uint64_t tag = 0;  // kAction/kAck/kNack: unique per sender and session
  SyncGeneration generation = 0;
  ConflictPolicy conflict = ConflictPolicy::kStatePrecedence;  // kHello
  uint32_t window_size = 0;                                    // kHelloReply: N
  uint32_t window_count = 0;                  // kHelloReply: messages now in the window
  std::vector<RemoteMessage> messages;        // kList, kFetched
  std::vector<RemoteId> ids;                  // kFetch; kFetched: the id asked for;
                                              // kList: remote ids destroyed on the server
  bool missing = false;                       // kFetched: no such message
  Action action;                              // kAction
  AckOutcome outcome = AckOutcome::kApplied;  // kAck
  RemoteId remote = kNoRemoteId;              // kAck of an insert: the new id
};

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_TYPES_H_
