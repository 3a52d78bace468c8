// The server half of the engine, for the reference remote server.
//
// RemoteStore is the per-user state the server must persist atomically after
// each call: the window (remote id -> message), its action list (changes made
// on the mobile side since the last sync), the Sent folder's keys and the
// sync generation. It applies an agent's actions idempotently, assigning
// remote ids, and runs the garbage collector that keeps the window at N.
//
// ServerSession answers one agent session's frames (sans-I/O: frames in,
// frames out). The agent drives every time-out; the server only re-sends what
// is unacknowledged when the agent repeats its swap request.
#ifndef MOBILESYNC_SYNC_AGENT_ENGINE_REMOTE_STORE_MODEL_H_
#define MOBILESYNC_SYNC_AGENT_ENGINE_REMOTE_STORE_MODEL_H_

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "sync_agent/engine/action_list.h"
#include "sync_agent/engine/action_window.h"
#include "sync_agent/engine/precedence.h"
#include "sync_agent/engine/window.h"

namespace mobilesync::engine {

struct RemoteStoreOptions {
  WindowPolicy window;  // size: N slots
  ConflictPolicy conflict = ConflictPolicy::kStatePrecedence;
};

class RemoteStore {
 public:
  // Returns the next unused remote id (never 0). Default: 1, 2, 3...
  using IdAllocator = std::function<RemoteId()>;

  explicit RemoteStore(const RemoteStoreOptions& options, IdAllocator ids = nullptr);

  // --- The mobile side (device API, the phone's mail arriving) -------------
  // New mail on the phone: stored, recorded as an insert, then the garbage
  // collector runs. Returns its id.
  RemoteId DeviceDeliver(const MessageMeta& meta);
  // The phone user changed a message's state. NotFound for an unknown id.
  [[nodiscard]] Status DeviceSetState(RemoteId id, MessageState state);
  // The phone user destroyed a message. NotFound for an unknown id.
  [[nodiscard]] Status DeviceDestroy(RemoteId id);
  // The phone user composed a message to send through the organisation.
  RemoteId DeviceCompose(const MessageMeta& meta);
  // Drops the oldest messages beyond the window (records an unmap for each).
  // Never drops a message whose insert the agent has not acknowledged: that
  // message would be lost to the local side.
  void CollectGarbage();

  // --- The agent's side (ServerSession calls these) ------------------------
  // Applies one of the agent's actions; idempotent. For an insert, *assigned
  // receives the message's remote id (the existing one when the message is
  // already here: matched by match key). *note explains a no-op.
  AckOutcome ApplyAgentAction(const Action& action, RemoteId* assigned, std::string* note) {
    return ApplyAgentAction(action, options_.conflict, assigned, note);
  }
  // The same, resolving conflicts by `policy` (the one the agent announced).
  AckOutcome ApplyAgentAction(const Action& action, ConflictPolicy policy, RemoteId* assigned,
                              std::string* note);
  // Ends an initial sync: the pairing is now `generation`, and the action
  // list entries the list comparison subsumed are dropped (all but kDeliver).
  // Idempotent.
  void Commit(SyncGeneration generation);

  // --- State ---------------------------------------------------------------
  const RemoteMessage* Find(RemoteId id) const;
  // The window, newest first.
  std::vector<RemoteMessage> Window() const;
  size_t window_count() const { return messages_.size(); }
  ActionList& actions() { return actions_; }
  const ActionList& actions() const { return actions_; }
  const std::set<std::string>& sent_keys() const { return sent_keys_; }
  SyncGeneration generation() const { return generation_; }
  const RemoteStoreOptions& options() const { return options_; }

 private:
  RemoteId NewId();
  AckOutcome ApplyState(RemoteId id, MessageState state, ConflictPolicy policy, std::string* note);
  void EraseMessage(RemoteId id);

  RemoteStoreOptions options_;
  IdAllocator ids_;
  RemoteId next_id_ = 1;
  std::map<RemoteId, RemoteMessage> messages_;
  std::unordered_map<std::string, RemoteId> by_key_;
  ActionList actions_{ActionList::Side::kRemote};
  std::set<std::string> sent_keys_;
  SyncGeneration generation_ = 0;
};

class ServerSession {
 public:
  // REQUIRES: store outlives the session.
  ServerSession(RemoteStore* store, size_t max_in_flight);

  // One frame from the agent; returns the frames to send back, in order.
  std::vector<Frame> OnFrame(const Frame& frame);

  // No-ops and rejections met so far (for the log).
  const std::vector<std::string>& reports() const { return reports_; }

 private:
  void Pump(std::vector<Frame>* out);
  Frame ActionFrame(uint64_t tag, uint64_t seq) const;

  RemoteStore* store_;
  // The agent's per-user policy from kHello (until then, the store's own).
  ConflictPolicy conflict_;
  ActionWindow window_;
  bool swapping_ = false;
  std::vector<std::string> reports_;
};

}  // namespace mobilesync::engine

#endif  // MOBILESYNC_SYNC_AGENT_ENGINE_REMOTE_STORE_MODEL_H_
