// A simulated agent (mailbox + durable sync state) and a driver that runs
// one SyncSession against a ServerSession over a simulated link that can
// lose and duplicate frames and crash at any step. Shared by the worked
// example and the randomized model test.
#ifndef MOBILESYNC_TESTS_UNIT_ENGINE_SIM_H_
#define MOBILESYNC_TESTS_UNIT_ENGINE_SIM_H_

#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "sync_agent/engine/action_list.h"
#include "sync_agent/engine/id_map.h"
#include "sync_agent/engine/remote_store_model.h"
#include "sync_agent/engine/sync_session.h"

namespace mobilesync::engine::sim {

// The agent's side: the Dovecot mailbox plus what the plugin and the agent
// persist (action list, id map, generation). Survives crashes.
struct SimLocal {
  std::string mailbox = "INBOX";
  uint32_t uidvalidity = 1;
  uint32_t next_uid = 1;
  std::map<uint32_t, LocalMessage> messages;  // by uid
  ActionList actions{ActionList::Side::kLocal};
  IdMap map;
  SyncGeneration generation = 0;
  std::set<std::string> sent;  // match keys in the Sent folder

  LocalId IdOf(uint32_t uid) const { return {mailbox, uidvalidity, uid}; }
  // Appends without recording an action (setup, or the engine's appends).
  LocalId AppendQuiet(const MessageMeta& meta);
  // The user's (or the MTA's) acts, recorded in the action list like the
  // plugin does.
  LocalId Deliver(const MessageMeta& meta);
  void SetState(LocalId id, MessageState state);
  void Destroy(LocalId id);  // by value: may name the erased message
  void FileSent(const MessageMeta& meta);
  // A new UIDVALIDITY: every message gets a new uid; action-list entries
  // naming old uids are dropped; the map is left stale.
  void RenumberUids();

  const LocalMessage* Find(const LocalId& id) const;
  const LocalMessage* FindByKey(const std::string& key) const;
  AgentSnapshot Snapshot() const;
};

struct Faults {
  double drop = 0;   // per frame
  double dup = 0;    // per frame
  double crash = 0;  // per step (op carried out, frame processed)
};

struct RunResult {
  bool crashed = false;
  Status status;
  std::vector<std::string> reports;
  SyncKind kind = SyncKind::kInitial;
  size_t events = 0;
};

// Called after each event's ops were carried out, when the session's phase
// changed; `left` is the phase it left.
using PhaseObserver =
    std::function<void(SyncSession::Phase left, const SyncSession& session)>;

struct RunOptions {
  SessionOptions session;
  size_t server_in_flight = 8;
  Faults faults;
  PhaseObserver observer;
};

// Runs one session to its end (done, or crashed). `rng` decides delivery
// order and faults; nullptr: deterministic FIFO order and no faults.
RunResult RunSession(SimLocal* local, RemoteStore* store,
                     const RunOptions& options, std::mt19937_64* rng);

// Runs sessions until one completes OK (after max_faulty attempts faults are
// switched off). Returns the number of sessions run.
int SyncUntilDone(SimLocal* local, RemoteStore* store,
                  const RunOptions& options, std::mt19937_64* rng,
                  int max_faulty = 30);

}  // namespace mobilesync::engine::sim

#endif  // MOBILESYNC_TESTS_UNIT_ENGINE_SIM_H_
