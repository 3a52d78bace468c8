// SyncSession: one agent-side sync session as a sans-I/O state machine.
//
// The driver (mobilesync-agent) feeds it events and carries out the ops it
// returns, in order, before feeding the next event:
//
//   SyncSession s(snapshot, options);
//   ops = s.Start(now);
//   loop:
//     for op in ops: carry it out (send a frame, touch the mailbox, persist a
//                    mapping, delete an action-list entry, ...)
//     ops = s.OnFrame(frame, now)                      a frame arrived
//         | s.OnLocalApplied(tag, status, uid, now)    a mailbox op finished
//         | s.OnTimer(now)                             at s.next_deadline()
//   until an op of kind kDone (then s.done()).
//
// Ops are ordered so that stopping after any one of them (a crash) leaves
// durable state from which a new session converges: a mapping is persisted
// before the action-list entry that produced it is deleted, a local destroy
// completes before its mapping goes, an ack is sent only after the local
// change is done, and the generation is written last.
//
// The session never reads durable state itself: everything comes in the
// snapshot, which the driver loads at the start (mapping table, action list,
// generation, the mailbox's message list).
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_SYNC_SESSION_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_SYNC_SESSION_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "sync_agent/engine/action_window.h"
#include "sync_agent/engine/id_map.h"
#include "sync_agent/engine/initial_sync.h"
#include "sync_agent/engine/local_view.h"
#include "sync_agent/engine/precedence.h"
#include "sync_agent/engine/types.h"
#include "sync_agent/engine/update_sync.h"
#include "sync_agent/engine/window.h"

namespace mobilesync::engine {

// The agent's durable state at the start of a session.
struct AgentSnapshot {
  SyncGeneration generation = 0;
  IdMap map;
  std::vector<Action> actions;         // the action list, in order
  std::vector<LocalMessage> messages;  // the mailbox now (any order)
  uint32_t uidvalidity = 0;            // the mailbox's current UIDVALIDITY
  // When the local side has several mailboxes (Dovecot: INBOX and Trash):
  // each one's current UIDVALIDITY. Empty: every pairing is checked against
  // `uidvalidity`.
  std::map<std::string, uint32_t> mailbox_uidvalidity;
};

struct SessionOptions {
  ConflictPolicy conflict = ConflictPolicy::kStatePrecedence;
  // The window size N comes from the server; this is the agent's setting.
  bool prefer_flagged_or_unread = false;
  FlightOptions flight;
  // After an initial sync's commit, swap once more to receive what the list
  // comparison cannot show (mail composed on the phone). The wire protocol
  // ends an initial session at its commit (END_SESSION) and delivers such
  // mail in the next update session, so its driver turns this off.
  bool swap_after_commit = true;
};

enum class OpKind : uint8_t {
  kSend,               // send `frame` to the server
  kAppendLocal,        // append `message` (body: fetch it by message.id from
                       // the frame that carried it); then OnLocalApplied(tag,
                       // status, new uid)
  kSetLocalState,      // set `local` to `state`; then OnLocalApplied(tag)
  kDestroyLocal,       // expunge `local` (missing: success); OnLocalApplied
  kSubmitMessage,      // submit composed `message` through the MTA and file it
                       // in Sent, once per match key; OnLocalApplied
  kFileInSent,         // file `message` in the local Sent folder, once per
                       // match key; OnLocalApplied
  kPutMapping,         // persist local <-> remote
  kRemoveMapping,      // persist: `local` is unmapped
  kDeleteActionEntry,  // delete action-list entry `seq` (missing: fine)
  kSetGeneration,      // persist the agent's sync generation
  kReport,             // log `note` (a no-op, a conflict, a skipped entry)
  kDone,               // the session is over with `status`
};
const char* OpKindName(OpKind kind);

struct Op {
  OpKind kind = OpKind::kReport;
  Frame frame;                                 // kSend
  uint64_t tag = 0;                            // mailbox ops: pass back to OnLocalApplied
  RemoteMessage message;                       // kAppendLocal, kSubmitMessage, kFileInSent
  LocalId local;                               // mailbox ops, mappings
  RemoteId remote = kNoRemoteId;               // kPutMapping, kRemoveMapping
  MessageState state = MessageState::kUnread;  // kSetLocalState
  uint64_t seq = 0;                            // kDeleteActionEntry
  SyncGeneration generation = 0;               // kSetGeneration
  std::string note;                            // kReport
  Status status;                               // kDone
};

class SyncSession {
 public:
  enum class Phase : uint8_t {
    kHello,      // waiting for the server's generation and window size
    kList,       // initial: waiting for the remote list
    kFetch,      // initial: fetching remote-only messages, appending locally
    kMerge,      // initial: applying merged states and recorded destroys
    kReplay,     // update: replaying the local action list
    kSwap,       // update: applying the server's actions
    kNormalise,  // unmapping what left the window
    kPull,       // filling the window with the newest local messages
    kCommit,     // initial: both sides adopt the new generation, then
                 // swap, normalise and pull once more (only what the list
                 // comparison cannot show, e.g. mail composed on the phone)
    kDone,
  };

  SyncSession(AgentSnapshot snapshot, const SessionOptions& options);

  std::vector<Op> Start(int64_t now_ms);
  std::vector<Op> OnFrame(const Frame& frame, int64_t now_ms);
  // A mailbox op finished. new_id: the appended message's id (kAppendLocal);
  // for kSetLocalState the message's id afterwards when setting the state
  // moved it (Dovecot: INBOX <-> Trash gives it a new uid), else empty.
  std::vector<Op> OnLocalApplied(uint64_t tag, const Status& status, const LocalId& new_id,
                                 int64_t now_ms);
  std::vector<Op> OnTimer(int64_t now_ms);

  // When OnTimer must be called next; nullopt when nothing is awaited from
  // the server (e.g. only mailbox ops are outstanding).
  std::optional<int64_t> next_deadline() const;
  bool done() const { return phase_ == Phase::kDone; }
  const Status& status() const { return status_; }
  Phase phase() const { return phase_; }
  SyncKind kind() const { return kind_; }
  // The session's view of the pairing (equal to the persisted one once every
  // op returned so far has been carried out).
  const IdMap& map() const { return map_; }
  const LocalView& local() const { return local_; }
  uint32_t window_size() const { return window_policy_.size; }

 private:
  struct PendingLocal {
    enum class What : uint8_t { kFetchAppend, kMergeState, kMergeDestroy, kServerAction };
    What what = What::kFetchAppend;
    uint64_t server_tag = 0;   // kServerAction: the frame to ack
    RemoteApply::Step step{};  // kServerAction
    RemoteId remote = kNoRemoteId;
    LocalId local;
    MessageMeta meta;
    MessageState state = MessageState::kUnread;
  };

  void Emit(Op op) { out_.push_back(std::move(op)); }
  std::vector<Op> Flush();
  void Report(std::string note);
  void Fail(Status status);
  void Finish();
  void SendRequest(Frame frame, int64_t now_ms);
  void PutMapping(const LocalId& local, RemoteId remote);
  void SetLocalState(const LocalId& local, MessageState state, const LocalId& new_id);
  void RemoveMapping(const LocalId& local);
  uint64_t LocalOp(OpKind kind, PendingLocal pending, Op op);

  void OnHelloReply(const Frame& frame, int64_t now_ms);
  void OnList(const Frame& frame, int64_t now_ms);
  void OnFetched(const Frame& frame);
  void OnAck(const Frame& frame);
  void OnServerAction(const Frame& frame);
  void AckServer(uint64_t server_tag, AckOutcome outcome);

  void SendFetchBatch(int64_t now_ms);
  void StartMerge();
  void MergeOp(OpKind kind, PendingLocal p);
  void StartReplay();
  void StartSwap(int64_t now_ms);
  void StartNormalise();
  void StartPull();
  void StartCommit(int64_t now_ms);
  void Enqueue(Action action);
  void Pump(int64_t now_ms);
  void Advance(int64_t now_ms);
  Frame ActionFrame(uint64_t tag, size_t payload) const;

  SessionOptions options_;
  AgentSnapshot snapshot_;  // generation, actions (messages/map moved out)
  IdMap map_;
  LocalView local_;
  WindowPolicy window_policy_;
  Phase phase_ = Phase::kHello;
  SyncKind kind_ = SyncKind::kInitial;
  Status status_;
  std::vector<Op> out_;

  // A request awaiting its reply (hello, list, fetch, swap, commit).
  std::optional<Frame> request_;
  int64_t request_deadline_ = 0;
  int request_attempts_ = 0;

  SyncGeneration server_generation_ = 0;
  SyncGeneration new_generation_ = 0;
  InitialSyncPlan plan_;
  std::deque<RemoteId> fetch_queue_;
  std::set<RemoteId> fetching_;
  std::set<RemoteId> appending_;

  ActionWindow window_;
  std::vector<Action> outbox_;  // payloads of window_ entries

  uint64_t next_local_tag_ = 1;
  std::map<uint64_t, PendingLocal> pending_local_;
  std::set<uint64_t> server_tags_applying_;
  std::map<uint64_t, AckOutcome> server_tags_done_;
  bool complete_received_ = false;
  bool committed_ = false;  // initial: both sides adopted new_generation_
};

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_SYNC_SESSION_H_
