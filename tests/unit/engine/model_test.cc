// Model-based randomized test of the whole engine.
//
// Each seed builds two identical worlds (a simulated Dovecot mailbox with the
// agent's durable state, and a remote store), then runs rounds of random user
// operations on both sides (new mail, read, unread, trash, restore, destroy,
// composing, window overflow, rarely a lost id map or a UIDVALIDITY change)
// followed by a sync. World B syncs over a perfect link; world A over a link
// that loses and duplicates frames and crashes at any step (the session is
// dropped and restarted from durable state only). After every round:
//  * B obeys the precedence rule for every message changed since the last
//    sync (both sides changed: ResolveConflict; one side: its state);
//  * A equals B (faults change nothing but time);
//  * in both: the window holds exactly the chosen N of the local mailbox, each
//    mapped pair agrees on its state, no message exists twice, no message is
//    missing locally unless a user destroyed it, both action lists are empty.
//
// MS_ENGINE_SEEDS=N runs N seeds (default kDefaultSeeds); MS_ENGINE_SEED=S
// replays seed S alone, or starts there when MS_ENGINE_SEEDS is set too;
// MS_ENGINE_TRACE=1 prints each faulty session's outcome and reports.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sync_agent/engine/precedence.h"
#include "sync_agent/engine/remote_store_model.h"
#include "sync_agent/engine/window.h"
#include "unit/engine/sim.h"

namespace mobilesync::engine {
namespace {

constexpr int kDefaultSeeds = 2000;
constexpr int kRounds = 5;

struct Config {
  WindowPolicy window;
  ConflictPolicy conflict = ConflictPolicy::kStatePrecedence;
  size_t agent_w = 4;
  size_t server_w = 4;
  sim::Faults faults;
};

struct World {
  sim::SimLocal local;
  std::unique_ptr<RemoteStore> store;

  explicit World(const Config& c) {
    RemoteStoreOptions o;
    o.window = c.window;
    // The store keeps its default: the agent's kHello must carry the user's
    // policy to the server, or the precedence checks fail.
    o.conflict = ConflictPolicy::kStatePrecedence;
    store = std::make_unique<RemoteStore>(o);
  }
  const RemoteMessage* RemoteByKey(const std::string& key) const {
    for (const RemoteMessage& m : store->Window()) {
      if (m.meta.match_key == key) return store->Find(m.id);
    }
    return nullptr;
  }
};

struct UserOp {
  enum Type { kNew, kState, kDestroy, kCompose, kFileSent, kLoseMap, kRenumber };
  bool remote = false;
  Type type = kNew;
  std::string key;
  MessageState state = MessageState::kUnread;
  MessageMeta meta;
};

// Everything the test remembers across rounds of one seed.
struct Ledger {
  std::set<std::string> created;
  std::set<std::string> destroyed;  // by a user, on either side
  std::set<std::string> composed;
  std::set<std::string> filed;
  int64_t clock = 1000;
  int counter = 0;
};

MessageState RandomLiveState(std::mt19937_64& rng) {
  return static_cast<MessageState>(rng() % 3);
}

// One random user op on world `w`'s current state.
UserOp MakeOp(const World& w, std::mt19937_64& rng, Ledger* ledger) {
  {
    UserOp op;
    op.remote = rng() % 2 == 1;
    int dice = static_cast<int>(rng() % 100);
    std::vector<std::string> keys;
    if (op.remote) {
      for (const RemoteMessage& m : w.store->Window()) {
        keys.push_back(m.meta.match_key);
      }
    } else {
      for (const auto& [uid, m] : w.local.messages) {
        keys.push_back(m.meta.match_key);
      }
    }
    if (dice < 30 || keys.empty()) {
      op.type = UserOp::kNew;
      op.meta.match_key = (op.remote ? "R" : "L") + std::to_string(++ledger->counter);
      op.meta.date = ++ledger->clock;
      // Now and then mail arrives out of date order.
      if (rng() % 5 == 0) op.meta.date -= static_cast<int64_t>(rng() % 40);
      op.meta.flagged = rng() % 8 == 0;
      ledger->created.insert(op.meta.match_key);
    } else if (dice < 75) {
      op.type = UserOp::kState;
      op.key = keys[rng() % keys.size()];
      op.state = RandomLiveState(rng);
    } else if (dice < 90) {
      op.type = UserOp::kDestroy;
      op.key = keys[rng() % keys.size()];
      ledger->destroyed.insert(op.key);
    } else if (dice < 94) {
      op.type = op.remote ? UserOp::kCompose : UserOp::kFileSent;
      op.meta.match_key = "S" + std::to_string(++ledger->counter);
      op.meta.date = ++ledger->clock;
      (op.remote ? ledger->composed : ledger->filed).insert(op.meta.match_key);
    } else if (dice < 97) {
      op.type = UserOp::kLoseMap;
    } else {
      op.type = UserOp::kRenumber;
    }
    return op;
  }
}

// Applies a user op to a world; false if the world lacks the message (the
// worlds diverged, which the comparison reports).
bool Apply(World* w, const UserOp& op) {
  switch (op.type) {
    case UserOp::kNew:
      if (op.remote) {
        w->store->DeviceDeliver(op.meta);
      } else {
        w->local.Deliver(op.meta);
      }
      return true;
    case UserOp::kState:
    case UserOp::kDestroy: {
      if (op.remote) {
        const RemoteMessage* m = w->RemoteByKey(op.key);
        if (m == nullptr) return false;
        Status s = op.type == UserOp::kDestroy
                       ? w->store->DeviceDestroy(m->id)
                       : w->store->DeviceSetState(m->id, op.state);
        return s.ok();
      }
      const LocalMessage* m = w->local.FindByKey(op.key);
      if (m == nullptr) return false;
      if (op.type == UserOp::kDestroy) {
        w->local.Destroy(m->id);
      } else {
        w->local.SetState(m->id, op.state);
      }
      return true;
    }
    case UserOp::kCompose:
      w->store->DeviceCompose(op.meta);
      return true;
    case UserOp::kFileSent:
      w->local.FileSent(op.meta);
      return true;
    case UserOp::kLoseMap:
      w->local.map.Clear();
      return true;
    case UserOp::kRenumber:
      w->local.RenumberUids();
      return true;
  }
  return false;
}

// What one world looks like, by match key (ids differ between worlds).
std::string Describe(const World& w) {
  std::ostringstream s;
  std::map<std::string, char> local;
  for (const auto& [uid, m] : w.local.messages) {
    local[m.meta.match_key] = MessageStateLetter(m.meta.state);
  }
  s << "local:";
  for (const auto& [k, st] : local) s << ' ' << k << st;
  s << "\nremote:";
  for (const RemoteMessage& m : w.store->Window()) {
    s << ' ' << m.meta.match_key << MessageStateLetter(m.meta.state);
  }
  std::set<std::string> pairs;
  for (const auto& [l, r] : w.local.map.pairs()) {
    const LocalMessage* lm = w.local.Find(l);
    const RemoteMessage* rm = w.store->Find(r);
    pairs.insert((lm ? lm->meta.match_key : "?" + ToString(l)) + "=" +
                 (rm ? rm->meta.match_key : "?" + std::to_string(r)));
  }
  s << "\nmap:";
  for (const std::string& p : pairs) s << ' ' << p;
  s << "\nsent:";
  for (const std::string& k : w.local.sent) s << ' ' << k;
  s << "\nremote sent:";
  for (const std::string& k : w.store->sent_keys()) s << ' ' << k;
  return s.str();
}

// The invariants every world must satisfy after a successful sync.
std::string CheckInvariants(const World& w, const Ledger& ledger,
                            const Config& c) {
  std::ostringstream err;
  const sim::SimLocal& l = w.local;
  if (l.generation == 0 || l.generation != w.store->generation()) {
    err << "generations differ; ";
  }
  if (!l.actions.empty()) err << "local action list not empty; ";
  if (!w.store->actions().empty()) err << "remote action list not empty; ";
  for (const auto& [lid, rid] : l.map.pairs()) {
    const LocalMessage* lm = l.Find(lid);
    const RemoteMessage* rm = w.store->Find(rid);
    if (lm == nullptr || rm == nullptr) {
      err << "dangling pair " << ToString(lid) << "=" << rid << "; ";
    } else if (lm->meta.match_key != rm->meta.match_key ||
               lm->meta.state != rm->meta.state) {
      err << "pair disagrees " << lm->meta.match_key << "; ";
    }
  }
  if (w.store->window_count() != l.map.size()) {
    err << "window holds " << w.store->window_count() << " but "
        << l.map.size() << " mapped; ";
  }
  std::vector<LocalMessage> msgs;
  for (const auto& [uid, m] : l.messages) msgs.push_back(m);
  std::set<LocalId> chosen;
  for (size_t i : SelectWindow(msgs, c.window)) chosen.insert(msgs[i].id);
  std::set<LocalId> mapped;
  for (const auto& [lid, rid] : l.map.pairs()) mapped.insert(lid);
  if (chosen != mapped) err << "window is not the chosen N; ";
  std::set<std::string> keys;
  for (const LocalMessage& m : msgs) {
    if (!keys.insert(m.meta.match_key).second) {
      err << "local duplicate " << m.meta.match_key << "; ";
    }
  }
  std::set<std::string> rkeys;
  for (const RemoteMessage& m : w.store->Window()) {
    if (!rkeys.insert(m.meta.match_key).second) {
      err << "remote duplicate " << m.meta.match_key << "; ";
    }
  }
  for (const std::string& k : ledger.created) {
    if (ledger.destroyed.count(k) == 0 && keys.count(k) == 0) {
      err << "lost " << k << "; ";
    }
  }
  for (const std::string& k : ledger.composed) {
    if (l.sent.count(k) == 0) err << "composed " << k << " not sent; ";
  }
  for (const std::string& k : ledger.filed) {
    if (w.store->sent_keys().count(k) == 0) err << "sent " << k << " not filed; ";
  }
  return err.str();
}

struct Expectation {
  std::string key;
  MessageState state;
};

// For every mapped message changed since the last sync, the state the sync
// must leave it in.
std::vector<Expectation> Expect(const World& w, ConflictPolicy policy) {
  std::vector<Expectation> out;
  for (const auto& [lid, rid] : w.local.map.pairs()) {
    Action ls;
    ls.local = lid;
    Action rs;
    rs.remote = rid;
    const Action* lc = w.local.actions.PendingChange(ls);
    const Action* rc = w.store->actions().PendingChange(rs);
    if (lc == nullptr && rc == nullptr) continue;
    const LocalMessage* lm = w.local.Find(lid);
    const RemoteMessage* rm = w.store->Find(rid);
    std::string key = lm ? lm->meta.match_key : rm ? rm->meta.match_key : "";
    if (key.empty()) continue;
    auto state_of = [](const Action* a) {
      return a->kind == ActionKind::kDestroy ? MessageState::kDestroyed
                                             : a->meta.state;
    };
    MessageState want;
    if (lc != nullptr && rc != nullptr) {
      want = ResolveConflict(state_of(lc), state_of(rc), policy);
    } else {
      want = state_of(lc != nullptr ? lc : rc);
    }
    out.push_back({key, want});
  }
  return out;
}

std::string CheckExpectations(const World& w,
                              const std::vector<Expectation>& expected) {
  std::ostringstream err;
  for (const Expectation& e : expected) {
    const LocalMessage* lm = w.local.FindByKey(e.key);
    const RemoteMessage* rm = w.RemoteByKey(e.key);
    if (e.state == MessageState::kDestroyed) {
      if (lm != nullptr || rm != nullptr) err << e.key << " not destroyed; ";
      continue;
    }
    if (lm == nullptr || lm->meta.state != e.state) {
      err << e.key << " local state is not " << MessageStateName(e.state)
          << "; ";
    }
    if (rm != nullptr && rm->meta.state != e.state) {
      err << e.key << " remote state is not " << MessageStateName(e.state)
          << "; ";
    }
  }
  return err.str();
}

// Runs one seed; returns "" or what went wrong.
std::string RunSeed(uint64_t seed) {
  std::mt19937_64 rng(seed);
  Config c;
  c.window.size = 2 + static_cast<uint32_t>(rng() % 5);
  c.window.prefer_flagged_or_unread = rng() % 4 == 0;
  int p = static_cast<int>(rng() % 6);
  c.conflict = p < 4 ? ConflictPolicy::kStatePrecedence
                     : p == 4 ? ConflictPolicy::kMailboxWins
                              : ConflictPolicy::kHandheldWins;
  c.agent_w = 1 + rng() % 4;
  c.server_w = 1 + rng() % 4;
  c.faults.drop = 0.01 * static_cast<double>(rng() % 6);
  c.faults.dup = 0.01 * static_cast<double>(rng() % 6);
  c.faults.crash = 0.002 * static_cast<double>(rng() % 6);

  World a(c), b(c);
  Ledger ledger;
  // Both sides start with mail, some of it the same message (no pairing):
  // the initial sync must match those rather than copy them.
  int nl = static_cast<int>(rng() % 7), nr = static_cast<int>(rng() % 5);
  int shared = static_cast<int>(rng() % 3);
  for (int i = 0; i < nl + nr + shared; ++i) {
    MessageMeta m;
    m.match_key = "P" + std::to_string(i);
    m.date = static_cast<int64_t>(rng() % 1000);
    m.state = RandomLiveState(rng);
    m.flagged = rng() % 8 == 0;
    ledger.created.insert(m.match_key);
    bool on_local = i < nl || i >= nl + nr;
    bool on_remote = i >= nl;
    MessageMeta remote_meta = m;
    if (i >= nl + nr) remote_meta.state = RandomLiveState(rng);  // may differ
    for (World* w : {&a, &b}) {
      if (on_local) w->local.AppendQuiet(m);
      if (on_remote) w->store->DeviceDeliver(remote_meta);
    }
  }

  sim::RunOptions clean;
  clean.session.conflict = c.conflict;
  clean.session.prefer_flagged_or_unread = c.window.prefer_flagged_or_unread;
  clean.session.flight = FlightOptions{c.agent_w, 50, 4};
  clean.server_in_flight = c.server_w;
  sim::RunOptions faulty = clean;
  faulty.faults = c.faults;

  std::ostringstream trace;
  for (int round = 0; round <= kRounds; ++round) {
    bool check_precedence = round > 0;
    if (round > 0) {
      int n = 1 + static_cast<int>(rng() % 6);
      for (int i = 0; i < n; ++i) {
        UserOp op = MakeOp(b, rng, &ledger);
        trace << " [" << (op.remote ? "R" : "L") << op.type << " " << op.key
              << op.meta.match_key << " " << MessageStateLetter(op.state)
              << "]";
        if (op.type == UserOp::kLoseMap || op.type == UserOp::kRenumber) {
          check_precedence = false;  // an initial sync merges without history
        }
        if (!Apply(&b, op) || !Apply(&a, op)) {
          return "round " + std::to_string(round) + ": op on a missing message";
        }
      }
    }
    std::vector<Expectation> expected;
    if (check_precedence) expected = Expect(b, c.conflict);
    sim::RunResult rb = sim::RunSession(&b.local, b.store.get(), clean, nullptr);
    if (!rb.status.ok() || rb.crashed) {
      return "clean sync failed: " + rb.status.ToString();
    }
    int tries = sim::SyncUntilDone(&a.local, a.store.get(), faulty, &rng);
    if (tries < 0) return "faulty world never completed a sync";
    std::string err = CheckExpectations(b, expected);
    if (!err.empty()) return "round " + std::to_string(round) + " precedence: " + err;
    err = CheckInvariants(b, ledger, c);
    if (!err.empty()) return "round " + std::to_string(round) + " clean world: " + err;
    err = CheckInvariants(a, ledger, c);
    if (!err.empty()) {
      return "round " + std::to_string(round) + " faulty world: " + err +
             "\nA " + Describe(a) + "\nB " + Describe(b) + "\nops:" +
             trace.str();
    }
    std::string da = Describe(a), db = Describe(b);
    // Map lines name keys, so they compare across worlds too.
    if (da != db) {
      return "round " + std::to_string(round) + ": worlds differ\nA " + da +
             "\nB " + db + "\nops:" + trace.str();
    }
  }
  return "";
}

int SeedCount() {
  const char* env = std::getenv("MS_ENGINE_SEEDS");
  if (env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  return kDefaultSeeds;
}

TEST(SyncEngineModel, RandomUserOpsFaultsAndCrashesConverge) {
  // MS_ENGINE_SEED=S alone replays seed S; with MS_ENGINE_SEEDS=N it runs N
  // seeds from S on.
  const char* only = std::getenv("MS_ENGINE_SEED");
  uint64_t first = only ? std::strtoull(only, nullptr, 10) : 1;
  int count = only && std::getenv("MS_ENGINE_SEEDS") == nullptr ? 1
                                                                : SeedCount();
  int failures = 0;
  for (int i = 0; i < count; ++i) {
    uint64_t seed = first + static_cast<uint64_t>(i);
    std::string err = RunSeed(seed);
    if (!err.empty()) {
      ADD_FAILURE() << "seed " << seed << " (MS_ENGINE_SEED=" << seed
                    << "): " << err;
      if (++failures >= 3) break;
    }
  }
  RecordProperty("seeds", count);
  std::printf("[ model    ] %d seeds\n", count);
}

}  // namespace
}  // namespace mobilesync::engine
