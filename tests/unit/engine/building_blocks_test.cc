// The engine's small parts: id map, action list coalescing, the in-flight
// window, window selection, the sync-kind decision, initial-sync planning and
// the remote store's idempotent apply.
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sync_agent/engine/action_list.h"
#include "sync_agent/engine/action_window.h"
#include "sync_agent/engine/id_map.h"
#include "sync_agent/engine/initial_sync.h"
#include "sync_agent/engine/remote_store_model.h"
#include "sync_agent/engine/update_sync.h"
#include "sync_agent/engine/window.h"

namespace mobilesync::engine {
namespace {

LocalId L(uint32_t uid) {
  return {"INBOX", 7, uid};
}

MessageMeta Meta(const std::string& key, int64_t date, MessageState state = MessageState::kUnread,
                 bool flagged = false) {
  MessageMeta m;
  m.match_key = key;
  m.date = date;
  m.state = state;
  m.flagged = flagged;
  return m;
}

Action StateAction(uint32_t uid, MessageState from, MessageState to) {
  Action a;
  a.kind = StateChangeKind(from, to);
  a.local = L(uid);
  a.meta.state = to;
  return a;
}

TEST(IdMap, PutIsIdempotentAndOneToOne) {
  IdMap map;
  ASSERT_TRUE(map.Put(L(1), 10).ok());
  ASSERT_TRUE(map.Put(L(1), 10).ok());
  EXPECT_TRUE(map.Put(L(1), 11).IsInvalidArgument());
  EXPECT_TRUE(map.Put(L(2), 10).IsInvalidArgument());
  EXPECT_TRUE(map.Put(L(0), 12).IsInvalidArgument());
  EXPECT_TRUE(map.Put(L(3), kNoRemoteId).IsInvalidArgument());
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(*map.FindLocal(10), L(1));
  EXPECT_TRUE(map.RemoveByRemote(10));
  EXPECT_FALSE(map.RemoveByLocal(L(1)));
  EXPECT_TRUE(map.empty());
}

TEST(ActionList, StateChangesCoalesceToTheLatest) {
  ActionList list(ActionList::Side::kLocal);
  list.Record(StateAction(1, MessageState::kUnread, MessageState::kRead));
  list.Record(StateAction(2, MessageState::kUnread, MessageState::kRead));
  list.Record(StateAction(1, MessageState::kRead, MessageState::kUnread));
  ASSERT_EQ(list.entries().size(), 2u);
  EXPECT_EQ(list.entries()[0].local, L(2));
  EXPECT_EQ(list.entries()[1].meta.state, MessageState::kUnread);
  EXPECT_EQ(list.PendingChange(list.entries()[1])->meta.state, MessageState::kUnread);
}

TEST(ActionList, StateChangeFoldsIntoPendingInsert) {
  ActionList list(ActionList::Side::kLocal);
  Action ins;
  ins.kind = ActionKind::kInsert;
  ins.local = L(1);
  ins.meta = Meta("k", 1);
  list.Record(ins);
  list.Record(StateAction(1, MessageState::kUnread, MessageState::kTrash));
  ASSERT_EQ(list.entries().size(), 1u);
  EXPECT_EQ(list.entries()[0].meta.state, MessageState::kTrash);
}

TEST(ActionList, DestroyOfUnsentInsertLeavesNothing) {
  ActionList list(ActionList::Side::kLocal);
  Action ins;
  ins.kind = ActionKind::kInsert;
  ins.local = L(1);
  list.Record(ins);
  Action d;
  d.kind = ActionKind::kDestroy;
  d.local = L(1);
  EXPECT_EQ(list.Record(d), 0u);
  EXPECT_TRUE(list.empty());
  // A destroy of a message the other side has replaces its changes.
  list.Record(StateAction(2, MessageState::kUnread, MessageState::kRead));
  d.local = L(2);
  EXPECT_NE(list.Record(d), 0u);
  ASSERT_EQ(list.entries().size(), 1u);
  EXPECT_EQ(list.entries()[0].kind, ActionKind::kDestroy);
  EXPECT_FALSE(list.Remove(999));
}

TEST(ActionWindow, KeepsAtMostWInFlight) {
  ActionWindow w(FlightOptions{3, 100, 2});
  for (size_t i = 0; i < 5; ++i) w.Enqueue("m" + std::to_string(i), i);
  auto sent = w.TakeSendable(0);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(w.in_flight(), 3u);
  EXPECT_TRUE(w.TakeSendable(0).empty());
  EXPECT_EQ(*w.Complete(sent[1].tag), 1u);
  EXPECT_FALSE(w.Complete(sent[1].tag).has_value());  // duplicate ack
  auto more = w.TakeSendable(1);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].payload, 3u);
}

TEST(ActionWindow, NeverTwoInFlightForOneMessage) {
  ActionWindow w(FlightOptions{8, 100, 2});
  w.Enqueue("a", 0);
  w.Enqueue("a", 1);
  w.Enqueue("b", 2);
  auto sent = w.TakeSendable(0);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].payload, 0u);
  EXPECT_EQ(sent[1].payload, 2u);
  w.Complete(sent[0].tag);
  auto next = w.TakeSendable(0);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].payload, 1u);
}

TEST(ActionWindow, TimeOutsResendThenExhaust) {
  ActionWindow w(FlightOptions{2, 100, 2});
  w.Enqueue("a", 0);
  auto sent = w.TakeSendable(0);
  bool exhausted = false;
  EXPECT_TRUE(w.TakeExpired(99, &exhausted).empty());
  EXPECT_EQ(*w.next_deadline(), 100);
  auto again = w.TakeExpired(100, &exhausted);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].tag, sent[0].tag);  // same tag: the ack matches either
  EXPECT_FALSE(exhausted);
  EXPECT_TRUE(w.TakeExpired(250, &exhausted).empty());
  EXPECT_TRUE(exhausted);
  EXPECT_FALSE(w.idle());  // unacknowledged: still there
}

TEST(Window, StrictlyTheNNewest) {
  std::vector<LocalMessage> msgs = {{L(1), Meta("a", 10)},
                                    {L(2), Meta("b", 30)},
                                    {L(3), Meta("c", 20)},
                                    {L(4), Meta("d", 40, MessageState::kRead)}};
  auto chosen = SelectWindow(msgs, WindowPolicy{2, false});
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0], 3u);
  EXPECT_EQ(chosen[1], 1u);
}

TEST(Window, PreferFlaggedOrUnreadOverOlderReadOnes) {
  std::vector<LocalMessage> msgs = {{L(1), Meta("a", 10, MessageState::kUnread)},
                                    {L(2), Meta("b", 30, MessageState::kRead)},
                                    {L(3), Meta("c", 20, MessageState::kRead, true)},
                                    {L(4), Meta("d", 40, MessageState::kRead)}};
  auto chosen = SelectWindow(msgs, WindowPolicy{3, true});
  std::vector<size_t> want = {3, 2, 0};  // d (newest read), c (flagged), a
  EXPECT_EQ(chosen, want);
}

TEST(Window, NormaliseUnmapsOldestFirstAndPullAddsNewestFirst) {
  std::vector<LocalMessage> msgs;
  for (uint32_t i = 1; i <= 5; ++i) {
    msgs.push_back({L(i), Meta("k" + std::to_string(i), 100 - i)});
  }
  IdMap map;
  ASSERT_TRUE(map.Put(L(5), 50).ok());
  ASSERT_TRUE(map.Put(L(4), 40).ok());
  ASSERT_TRUE(map.Put(L(1), 10).ok());
  ASSERT_TRUE(map.Put(L(9), 90).ok());  // stale: no such local message
  auto unmap = PlanNormalise(msgs, map, WindowPolicy{2, false});
  ASSERT_EQ(unmap.size(), 3u);
  EXPECT_EQ(unmap[0].second, 50u);
  EXPECT_EQ(unmap[1].second, 40u);
  EXPECT_EQ(unmap[2].second, 90u);
  auto pull = PlanPull(msgs, map, WindowPolicy{2, false});
  ASSERT_EQ(pull.size(), 1u);
  EXPECT_EQ(pull[0], L(2));
}

// Same-second messages are pulled oldest (lowest uid) first, so the
// server's ids grow with the uids and both sides break ties of date the
// same way.
TEST(PlanPull, SameSecondMessagesGoOldestFirst) {
  std::vector<LocalMessage> msgs;
  for (uint32_t uid : {3u, 1u, 4u, 2u}) {
    LocalMessage m;
    m.id = L(uid);
    m.meta.date = 1000;
    m.meta.order = uid;
    msgs.push_back(m);
  }
  IdMap map;
  auto pull = PlanPull(msgs, map, WindowPolicy{3, false});
  ASSERT_EQ(pull.size(), 3u);
  EXPECT_EQ(pull[0], L(2));
  EXPECT_EQ(pull[1], L(3));
  EXPECT_EQ(pull[2], L(4));
}

TEST(DecideSyncKind, InitialUnlessBothSidesShareAGeneration) {
  IdMap map;
  ASSERT_TRUE(map.Put(L(1), 5).ok());
  EXPECT_EQ(DecideSyncKind(0, 3, map, 1, 7).kind, SyncKind::kInitial);
  EXPECT_EQ(DecideSyncKind(3, 0, map, 1, 7).kind, SyncKind::kInitial);
  EXPECT_EQ(DecideSyncKind(3, 4, map, 1, 7).kind, SyncKind::kInitial);
  EXPECT_EQ(DecideSyncKind(3, 3, map, 1, 7).kind, SyncKind::kUpdate);
  EXPECT_EQ(DecideSyncKind(3, 3, map, 1, 8).kind, SyncKind::kInitial) << "UIDVALIDITY change";
  EXPECT_EQ(DecideSyncKind(3, 3, IdMap(), 4, 7).kind, SyncKind::kInitial) << "lost id map";
  EXPECT_EQ(DecideSyncKind(3, 3, IdMap(), 0, 7).kind, SyncKind::kUpdate);
}

TEST(DecideSyncKind, EachMailboxHasItsOwnUidvalidity) {
  IdMap map;
  ASSERT_TRUE(map.Put(LocalId{"INBOX", 7, 1}, 5).ok());
  ASSERT_TRUE(map.Put(LocalId{"Trash", 9, 4}, 6).ok());
  std::map<std::string, uint32_t> now = {{"INBOX", 7}, {"Trash", 9}};
  EXPECT_EQ(DecideSyncKind(3, 3, map, 2, now).kind, SyncKind::kUpdate);
  now["Trash"] = 10;
  EXPECT_EQ(DecideSyncKind(3, 3, map, 2, now).kind, SyncKind::kInitial) << "Trash recreated";
  now.erase("Trash");
  EXPECT_EQ(DecideSyncKind(3, 3, map, 2, now).kind, SyncKind::kInitial) << "Trash gone";
  EXPECT_EQ(DecideSyncKind(3, 4, map, 2, {{"INBOX", 7}, {"Trash", 9}}).kind, SyncKind::kInitial);
  EXPECT_EQ(DecideSyncKind(3, 3, IdMap(), 2, {{"INBOX", 7}}).kind, SyncKind::kInitial)
      << "lost id map";
}

TEST(InitialSync, EmptyRemoteListDeletesNothing) {
  std::vector<LocalMessage> local = {{L(1), Meta("a", 1)}, {L(2), Meta("b", 2)}};
  IdMap map;
  ASSERT_TRUE(map.Put(L(1), 11).ok());
  ASSERT_TRUE(map.Put(L(2), 12).ok());
  InitialSyncPlan plan = PlanInitialSync(local, {}, map, {}, ConflictPolicy::kStatePrecedence);
  EXPECT_EQ(plan.stale.size(), 2u);  // unpaired only
  EXPECT_TRUE(plan.destroy_remote.empty());
  EXPECT_TRUE(plan.set_local.empty());
  EXPECT_TRUE(plan.fetch.empty());
}

TEST(InitialSync, EmptyLocalListFetchesEverythingNewestFirst) {
  std::vector<RemoteMessage> remote = {{11, Meta("a", 1)}, {12, Meta("b", 3)}, {13, Meta("c", 2)}};
  IdMap map;
  ASSERT_TRUE(map.Put(L(1), 11).ok());  // its local copy vanished
  InitialSyncPlan plan = PlanInitialSync({}, remote, map, {}, ConflictPolicy::kStatePrecedence);
  EXPECT_EQ(plan.fetch, (std::vector<RemoteId>{12, 13, 11}));
  EXPECT_TRUE(plan.destroy_remote.empty());
  ASSERT_EQ(plan.stale.size(), 1u);
}

TEST(InitialSync, MatchesByKeyAndMergesStatesByPrecedence) {
  std::vector<LocalMessage> local = {{L(1), Meta("a", 1, MessageState::kRead)},
                                     {L(2), Meta("b", 2, MessageState::kTrash)},
                                     {L(3), Meta("c", 3)}};
  std::vector<RemoteMessage> remote = {{21, Meta("a", 1, MessageState::kUnread)},
                                       {22, Meta("b", 2, MessageState::kRead)},
                                       {23, Meta("c", 3)},
                                       {24, Meta("d", 4)}};
  IdMap map;
  ASSERT_TRUE(map.Put(L(3), 23).ok());
  Action destroyed;
  destroyed.kind = ActionKind::kDestroy;
  destroyed.local = L(9);
  InitialSyncPlan plan =
      PlanInitialSync(local, remote, map, {destroyed}, ConflictPolicy::kStatePrecedence);
  EXPECT_EQ(plan.map_by_key.size(), 2u);
  EXPECT_EQ(plan.fetch, (std::vector<RemoteId>{24}));
  ASSERT_EQ(plan.set_remote.size(), 2u);
  EXPECT_EQ(plan.set_remote[0].second, MessageState::kRead);
  EXPECT_EQ(plan.set_remote[1].second, MessageState::kTrash);
  EXPECT_TRUE(plan.set_local.empty());
}

TEST(InitialSync, RecordedLocalDestroyIsHonoured) {
  IdMap map;
  ASSERT_TRUE(map.Put(L(1), 11).ok());
  Action d;
  d.kind = ActionKind::kDestroy;
  d.local = L(1);
  InitialSyncPlan plan =
      PlanInitialSync({}, {{11, Meta("a", 1)}}, map, {d}, ConflictPolicy::kStatePrecedence);
  EXPECT_EQ(plan.destroy_remote, (std::vector<RemoteId>{11}));
  EXPECT_TRUE(plan.fetch.empty());
}

// The device destroyed 11 (the server's list names it); 12 left the window
// (absent, not named); 13's local copy is gone already. Only 11's local
// copy is destroyed, even though it was read locally since (a destroy wins
// under every policy); the others are unpaired and nothing is fetched.
TEST(InitialSync, DestroyNamedByTheServerIsCarriedOutLocally) {
  std::vector<LocalMessage> local = {{L(1), Meta("a", 1, MessageState::kRead)},
                                     {L(2), Meta("b", 2)}};
  IdMap map;
  ASSERT_TRUE(map.Put(L(1), 11).ok());
  ASSERT_TRUE(map.Put(L(2), 12).ok());
  ASSERT_TRUE(map.Put(L(3), 13).ok());
  for (ConflictPolicy policy : {ConflictPolicy::kStatePrecedence, ConflictPolicy::kMailboxWins}) {
    InitialSyncPlan plan = PlanInitialSync(local, {}, map, {}, policy, {11, 13, 99});
    ASSERT_EQ(plan.destroy_local.size(), 1u);
    EXPECT_EQ(plan.destroy_local[0].first, L(1));
    EXPECT_EQ(plan.destroy_local[0].second, 11u);
    ASSERT_EQ(plan.stale.size(), 2u);
    EXPECT_EQ(plan.stale[0].second, 12u);
    EXPECT_EQ(plan.stale[1].second, 13u);
    EXPECT_TRUE(plan.fetch.empty());
    EXPECT_TRUE(plan.destroy_remote.empty());
  }
  // Without the server's word, 11 is only unpaired, as before.
  EXPECT_TRUE(
      PlanInitialSync(local, {}, map, {}, ConflictPolicy::kStatePrecedence).destroy_local.empty());
}

TEST(RemoteApply, ActionsOnUnknownIdsAreReportedNoops) {
  LocalView view({{L(1), Meta("a", 1)}});
  IdMap map;
  Action a;
  a.kind = ActionKind::kMarkRead;
  a.remote = 77;
  a.meta.state = MessageState::kRead;
  RemoteApply plan = PlanRemoteApply(a, view, map);
  EXPECT_EQ(plan.step, RemoteApply::Step::kAckNow);
  EXPECT_EQ(plan.outcome, AckOutcome::kNoop);
  EXPECT_FALSE(plan.note.empty());
  a.kind = ActionKind::kInsert;
  a.meta = Meta("a", 1);
  plan = PlanRemoteApply(a, view, map);
  EXPECT_EQ(plan.step, RemoteApply::Step::kMapExisting);  // never twice
}

TEST(RemoteStore, ApplyingAnActionTwiceLeavesTheSameState) {
  RemoteStore store(RemoteStoreOptions{{3, false}, {}});
  Action ins;
  ins.kind = ActionKind::kInsert;
  ins.local = L(1);
  ins.meta = Meta("a", 1);
  RemoteId r1 = 0, r2 = 0;
  std::string note;
  EXPECT_EQ(store.ApplyAgentAction(ins, &r1, &note), AckOutcome::kApplied);
  EXPECT_EQ(store.ApplyAgentAction(ins, &r2, &note), AckOutcome::kApplied);
  EXPECT_EQ(r1, r2);
  EXPECT_EQ(store.window_count(), 1u);
  Action read;
  read.kind = ActionKind::kMarkRead;
  read.remote = r1;
  read.meta.state = MessageState::kRead;
  EXPECT_EQ(store.ApplyAgentAction(read, &r2, &note), AckOutcome::kApplied);
  EXPECT_EQ(store.ApplyAgentAction(read, &r2, &note), AckOutcome::kApplied);
  EXPECT_EQ(store.Find(r1)->meta.state, MessageState::kRead);
  Action destroy;
  destroy.kind = ActionKind::kDestroy;
  destroy.remote = r1;
  EXPECT_EQ(store.ApplyAgentAction(destroy, &r2, &note), AckOutcome::kApplied);
  EXPECT_EQ(store.ApplyAgentAction(destroy, &r2, &note), AckOutcome::kNoop);
  EXPECT_FALSE(note.empty());
  EXPECT_TRUE(store.actions().empty());
}

TEST(RemoteStore, ConflictResolvedByPrecedence) {
  RemoteStore store(RemoteStoreOptions{{3, false}, {}});
  RemoteId r = store.DeviceDeliver(Meta("a", 1));
  store.Commit(1);  // pretend an initial sync happened
  ASSERT_TRUE(store.DeviceSetState(r, MessageState::kTrash).ok());
  Action read;
  read.kind = ActionKind::kMarkRead;
  read.remote = r;
  read.meta.state = MessageState::kRead;
  RemoteId ignored;
  std::string note;
  EXPECT_EQ(store.ApplyAgentAction(read, &ignored, &note), AckOutcome::kSuperseded);
  EXPECT_EQ(store.Find(r)->meta.state, MessageState::kTrash);
  EXPECT_EQ(store.actions().entries().size(), 1u);  // Trash goes to the agent
  Action destroy;
  destroy.kind = ActionKind::kDestroy;
  destroy.remote = r;
  EXPECT_EQ(store.ApplyAgentAction(destroy, &ignored, &note), AckOutcome::kApplied);
  EXPECT_TRUE(store.actions().empty());  // nothing travels back
}

TEST(RemoteStore, GarbageCollectorUnmapsOldestButNeverAnUnsentInsert) {
  RemoteStore store(RemoteStoreOptions{{2, false}, {}});
  RemoteId a = store.DeviceDeliver(Meta("a", 1));
  RemoteId b = store.DeviceDeliver(Meta("b", 2));
  RemoteId c = store.DeviceDeliver(Meta("c", 3));
  EXPECT_EQ(store.window_count(), 3u);  // a's insert is not acknowledged
  store.Commit(1);                      // the agent has everything now
  store.CollectGarbage();
  EXPECT_EQ(store.Find(a), nullptr);
  EXPECT_NE(store.Find(b), nullptr);
  EXPECT_NE(store.Find(c), nullptr);
  ASSERT_EQ(store.actions().entries().size(), 1u);
  EXPECT_EQ(store.actions().entries()[0].kind, ActionKind::kUnmap);
}

}  // namespace
}  // namespace mobilesync::engine
