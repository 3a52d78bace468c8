// Sync engine benchmarks (issue 6): the engine's own cost, without I/O.
// Both halves (SyncSession and ServerSession) run in one process through the
// test simulator over a perfect in-memory link; mailbox ops are map inserts.
//
//   BM_UpdateSync100Changes: a 1,000-message mailbox with a 200-message
//     window in sync; 50 changes on each side (reads, trash, destroys, new
//     mail, two conflicts); one update sync.
//   BM_InitialSync10kFetch: the remote side holds 10,000 messages, the local
//     side none: list, fetch, append and map all of them.
//   BM_InitialSync10kPull: the local side holds 10,000 messages, the remote
//     side none (window 10,000): normalise and pull all of them.
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "sync_agent/engine/remote_store_model.h"
#include "unit/engine/sim.h"

namespace mobilesync::engine {
namespace {

MessageMeta Meta(const std::string& key, int64_t date) {
  MessageMeta m;
  m.match_key = key;
  m.date = date;
  return m;
}

struct World {
  sim::SimLocal local;
  std::unique_ptr<RemoteStore> store;
};

sim::RunOptions Options() {
  sim::RunOptions o;
  o.session.flight.max_in_flight = 64;
  o.server_in_flight = 64;
  return o;
}

World MakeUpdateWorld() {
  World w;
  RemoteStoreOptions o;
  o.window.size = 200;
  w.store = std::make_unique<RemoteStore>(o);
  for (int i = 0; i < 1000; ++i) {
    w.local.AppendQuiet(Meta("m" + std::to_string(i), i));
  }
  sim::RunResult r = sim::RunSession(&w.local, w.store.get(), Options(),
                                     nullptr);
  if (!r.status.ok()) std::abort();
  // 50 local changes on messages in the window (uids 801..1000 are newest).
  for (uint32_t uid = 801; uid < 841; ++uid) {
    w.local.SetState(w.local.IdOf(uid), MessageState::kRead);
  }
  for (uint32_t uid = 841; uid < 846; ++uid) {
    w.local.SetState(w.local.IdOf(uid), MessageState::kTrash);
  }
  for (uint32_t uid = 846; uid < 850; ++uid) w.local.Destroy(w.local.IdOf(uid));
  w.local.Deliver(Meta("new-local", 5000));
  // 50 remote changes: 45 state changes (two on messages the agent also
  // changed: conflicts), 5 new messages.
  std::vector<RemoteMessage> window = w.store->Window();
  for (size_t i = 0; i < 45; ++i) {
    const RemoteMessage& m = window[window.size() - 1 - i];
    if (!w.store->DeviceSetState(m.id, MessageState::kTrash).ok()) std::abort();
  }
  for (int i = 0; i < 5; ++i) {
    w.store->DeviceDeliver(Meta("new-remote" + std::to_string(i), 6000 + i));
  }
  return w;
}

World Copy(const World& w) {
  World c;
  c.local = w.local;
  c.store = std::make_unique<RemoteStore>(*w.store);
  return c;
}

void RunAndCheck(World* w, benchmark::State& state) {
  sim::RunResult r = sim::RunSession(&w->local, w->store.get(), Options(),
                                     nullptr);
  if (!r.status.ok()) state.SkipWithError(r.status.ToString().c_str());
  state.counters["events"] = static_cast<double>(r.events);
}

void BM_UpdateSync100Changes(benchmark::State& state) {
  World base = MakeUpdateWorld();
  for (auto _ : state) {
    state.PauseTiming();
    World w = Copy(base);
    state.ResumeTiming();
    RunAndCheck(&w, state);
  }
}
BENCHMARK(BM_UpdateSync100Changes)->Unit(benchmark::kMillisecond);

void BM_InitialSync10kFetch(benchmark::State& state) {
  World base;
  RemoteStoreOptions o;
  o.window.size = 10000;
  base.store = std::make_unique<RemoteStore>(o);
  for (int i = 0; i < 10000; ++i) {
    base.store->DeviceDeliver(Meta("r" + std::to_string(i), i));
  }
  for (auto _ : state) {
    state.PauseTiming();
    World w = Copy(base);
    state.ResumeTiming();
    RunAndCheck(&w, state);
    if (w.local.messages.size() != 10000) state.SkipWithError("not copied");
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(BM_InitialSync10kFetch)->Unit(benchmark::kMillisecond);

void BM_InitialSync10kPull(benchmark::State& state) {
  World base;
  RemoteStoreOptions o;
  o.window.size = 10000;
  base.store = std::make_unique<RemoteStore>(o);
  for (int i = 0; i < 10000; ++i) {
    base.local.AppendQuiet(Meta("l" + std::to_string(i), i));
  }
  for (auto _ : state) {
    state.PauseTiming();
    World w = Copy(base);
    state.ResumeTiming();
    RunAndCheck(&w, state);
    if (w.store->window_count() != 10000) state.SkipWithError("not pulled");
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(BM_InitialSync10kPull)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mobilesync::engine

BENCHMARK_MAIN();
