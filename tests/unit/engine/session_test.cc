// SyncSession driven by hand (frames in, ops out) and through the simulator:
// acks, time-outs, nacks, the order of ops that makes crashes safe, and the
// initial sync's refusal to mass-delete.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sync_agent/engine/remote_store_model.h"
#include "sync_agent/engine/sync_session.h"
#include "unit/engine/sim.h"

namespace mobilesync::engine {
namespace {

MessageMeta Meta(const std::string& key, int64_t date,
                 MessageState state = MessageState::kUnread) {
  MessageMeta m;
  m.match_key = key;
  m.date = date;
  m.state = state;
  return m;
}

std::vector<OpKind> Kinds(const std::vector<Op>& ops) {
  std::vector<OpKind> out;
  for (const Op& op : ops) {
    if (op.kind != OpKind::kReport) out.push_back(op.kind);
  }
  return out;
}

const Op* FindOp(const std::vector<Op>& ops, OpKind kind) {
  for (const Op& op : ops) {
    if (op.kind == kind) return &op;
  }
  return nullptr;
}

// An agent with three mapped messages (uids 1..3 <-> remote 11..13), a
// generation shared with the server, and `actions` in its list.
class ManualSession : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint32_t uid = 1; uid <= 3; ++uid) {
      local_.AppendQuiet(Meta("k" + std::to_string(uid), 100 + uid));
      ASSERT_TRUE(local_.map.Put(local_.IdOf(uid), 10 + uid).ok());
    }
    local_.generation = 5;
    options_.flight = FlightOptions{2, 1000, 3};
  }

  // Starts the session and answers its hello: an update sync.
  std::vector<Op> StartUpdate() {
    session_ = std::make_unique<SyncSession>(local_.Snapshot(), options_);
    std::vector<Op> ops = session_->Start(0);
    EXPECT_EQ(ops.back().frame.kind, FrameKind::kHello);
    Frame reply;
    reply.kind = FrameKind::kHelloReply;
    reply.generation = 5;
    reply.window_size = 3;
    reply.window_count = 3;
    ops = session_->OnFrame(reply, 1);
    EXPECT_EQ(session_->kind(), SyncKind::kUpdate);
    return ops;
  }

  Frame Ack(uint64_t tag, RemoteId remote = kNoRemoteId,
            AckOutcome outcome = AckOutcome::kApplied) {
    Frame f;
    f.kind = FrameKind::kAck;
    f.tag = tag;
    f.remote = remote;
    f.outcome = outcome;
    return f;
  }

  sim::SimLocal local_;
  SessionOptions options_;
  std::unique_ptr<SyncSession> session_;
};

TEST_F(ManualSession, KeepsAtMostWActionsInFlightAndDeletesEachOnItsOwnAck) {
  for (uint32_t uid = 1; uid <= 3; ++uid) {
    local_.SetState(local_.IdOf(uid), MessageState::kRead);
  }
  std::vector<Op> ops = StartUpdate();
  std::vector<const Op*> sends;
  for (const Op& op : ops) {
    if (op.kind == OpKind::kSend) sends.push_back(&op);
  }
  ASSERT_EQ(sends.size(), 2u);  // W = 2
  uint64_t tag1 = sends[0]->frame.tag;
  uint64_t tag2 = sends[1]->frame.tag;
  uint64_t seq2 = sends[1]->frame.action.seq;
  ops = session_->OnFrame(Ack(tag2), 2);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kDeleteActionEntry,
                                             OpKind::kSend}));
  EXPECT_EQ(ops[0].seq, seq2);
  EXPECT_TRUE(session_->OnFrame(Ack(tag2), 3).empty()) << "duplicate ack";
  ops = session_->OnFrame(Ack(tag1), 4);
  EXPECT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kDeleteActionEntry}));
}

TEST_F(ManualSession, TimeOutsResendAndRepeatedTimeOutsFailKeepingTheEntry) {
  local_.SetState(local_.IdOf(1), MessageState::kRead);
  std::vector<Op> ops = StartUpdate();
  const Op* send = FindOp(ops, OpKind::kSend);
  ASSERT_NE(send, nullptr);
  uint64_t tag = send->frame.tag;
  ASSERT_EQ(*session_->next_deadline(), 1001);
  ops = session_->OnTimer(1001);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kSend}));
  EXPECT_EQ(ops[0].frame.tag, tag);
  ops = session_->OnTimer(2001);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kSend}));
  ops = session_->OnTimer(3001);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kDone}));
  EXPECT_TRUE(session_->status().IsTimeout());
  EXPECT_EQ(FindOp(ops, OpKind::kDeleteActionEntry), nullptr);
  EXPECT_TRUE(session_->OnFrame(Ack(tag), 3002).empty()) << "too late";
}

TEST_F(ManualSession, NackLeavesTheActionToItsTimeOut) {
  local_.SetState(local_.IdOf(1), MessageState::kRead);
  std::vector<Op> ops = StartUpdate();
  uint64_t tag = FindOp(ops, OpKind::kSend)->frame.tag;
  Frame nack;
  nack.kind = FrameKind::kNack;
  nack.tag = tag;
  ops = session_->OnFrame(nack, 2);
  EXPECT_EQ(Kinds(ops), std::vector<OpKind>{});
  ops = session_->OnTimer(1001);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kSend}));
  ops = session_->OnFrame(Ack(tag), 1002);
  EXPECT_NE(FindOp(ops, OpKind::kDeleteActionEntry), nullptr);
}

TEST_F(ManualSession, InsertIsMappedFromItsAckBeforeItsEntryIsDeleted) {
  LocalId id = local_.Deliver(Meta("new", 200));
  std::vector<Op> ops = StartUpdate();
  const Op* send = FindOp(ops, OpKind::kSend);
  ASSERT_NE(send, nullptr);
  EXPECT_EQ(send->frame.action.kind, ActionKind::kInsert);
  ops = session_->OnFrame(Ack(send->frame.tag, 99), 2);
  std::vector<OpKind> kinds = Kinds(ops);
  ASSERT_GE(kinds.size(), 2u);
  EXPECT_EQ(kinds[0], OpKind::kPutMapping);
  EXPECT_EQ(kinds[1], OpKind::kDeleteActionEntry);
  EXPECT_EQ(ops[0].local, id);
  EXPECT_EQ(ops[0].remote, 99u);
}

TEST_F(ManualSession, RemoteDestroyIsAppliedLocallyBeforeTheMappingGoes) {
  std::vector<Op> ops = StartUpdate();
  ASSERT_EQ(ops.back().frame.kind, FrameKind::kSwap);  // nothing to replay
  Frame f;
  f.kind = FrameKind::kAction;
  f.tag = 7;
  f.action.kind = ActionKind::kDestroy;
  f.action.remote = 12;
  ops = session_->OnFrame(f, 2);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kDestroyLocal}));
  EXPECT_EQ(ops[0].local, local_.IdOf(2));
  EXPECT_TRUE(session_->map().HasRemote(12));
  EXPECT_TRUE(session_->OnFrame(f, 3).empty()) << "duplicate while applying";
  ops = session_->OnLocalApplied(ops[0].tag, Status::OK(), {}, 4);
  ASSERT_EQ(Kinds(ops),
            (std::vector<OpKind>{OpKind::kRemoveMapping, OpKind::kSend}));
  EXPECT_EQ(ops[1].frame.kind, FrameKind::kAck);
  EXPECT_EQ(ops[1].frame.tag, 7u);
  // The server did not get our ack and sends it again: ack, do nothing.
  ops = session_->OnFrame(f, 5);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kSend}));
  EXPECT_EQ(ops[0].frame.kind, FrameKind::kAck);
}

TEST_F(ManualSession, ActionOnUnknownIdIsAckedAsNoopAndReported) {
  StartUpdate();
  Frame f;
  f.kind = FrameKind::kAction;
  f.tag = 3;
  f.action.kind = ActionKind::kMarkRead;
  f.action.remote = 4242;
  f.action.meta.state = MessageState::kRead;
  std::vector<Op> ops = session_->OnFrame(f, 2);
  const Op* report = FindOp(ops, OpKind::kReport);
  ASSERT_NE(report, nullptr);
  EXPECT_NE(report->note.find("4242"), std::string::npos);
  const Op* ack = FindOp(ops, OpKind::kSend);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->frame.outcome, AckOutcome::kNoop);
}

TEST_F(ManualSession, FailedLocalApplyFailsTheSessionWithoutAck) {
  StartUpdate();
  Frame f;
  f.kind = FrameKind::kAction;
  f.tag = 3;
  f.action.kind = ActionKind::kMarkRead;
  f.action.remote = 11;
  f.action.meta.state = MessageState::kRead;
  std::vector<Op> ops = session_->OnFrame(f, 2);
  ASSERT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kSetLocalState}));
  ops = session_->OnLocalApplied(ops[0].tag, Status::IOError("disk full"), {},
                                 3);
  EXPECT_EQ(Kinds(ops), (std::vector<OpKind>{OpKind::kDone}));
  EXPECT_TRUE(session_->status().IsIOError());
}

// --- Through the simulator -------------------------------------------------------

RemoteStoreOptions StoreOptions(uint32_t n) {
  RemoteStoreOptions o;
  o.window.size = n;
  return o;
}

TEST(InitialSyncSession, EmptyRemoteSideNeverDeletesLocalMail) {
  sim::SimLocal local;
  for (int i = 0; i < 8; ++i) {
    LocalId id = local.AppendQuiet(Meta("m" + std::to_string(i), i));
    ASSERT_TRUE(local.map.Put(id, 100 + i).ok());  // from an old pairing
  }
  local.generation = 3;
  RemoteStore store(StoreOptions(4));  // a fresh server: generation 0
  sim::RunResult r = sim::RunSession(&local, &store, {}, nullptr);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.kind, SyncKind::kInitial);
  EXPECT_EQ(local.messages.size(), 8u);
  EXPECT_EQ(store.window_count(), 4u);
  EXPECT_EQ(local.map.size(), 4u);
  EXPECT_EQ(local.generation, store.generation());
}

TEST(InitialSyncSession, EmptyLocalSideNeverDeletesRemoteMail) {
  sim::SimLocal local;
  RemoteStore store(StoreOptions(4));
  for (int i = 0; i < 3; ++i) store.DeviceDeliver(Meta("r" + std::to_string(i), i));
  sim::RunResult r = sim::RunSession(&local, &store, {}, nullptr);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(local.messages.size(), 3u);
  EXPECT_EQ(store.window_count(), 3u);
  EXPECT_EQ(local.map.size(), 3u);
}

TEST(InitialSyncSession, RerunAfterCrashesNeverDuplicates) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    sim::SimLocal local;
    RemoteStore store(StoreOptions(5));
    for (int i = 0; i < 6; ++i) {
      local.AppendQuiet(Meta("l" + std::to_string(i), 2 * i));
      store.DeviceDeliver(Meta("r" + std::to_string(i), 2 * i + 1));
    }
    local.AppendQuiet(Meta("both", 50));
    store.DeviceDeliver(Meta("both", 50));
    std::mt19937_64 rng(seed);
    sim::RunOptions o;
    o.faults.crash = 0.02;
    o.faults.drop = 0.05;
    o.faults.dup = 0.05;
    o.session.flight = FlightOptions{3, 100, 4};
    ASSERT_GT(sim::SyncUntilDone(&local, &store, o, &rng), 0);
    std::set<std::string> keys;
    for (const auto& [uid, m] : local.messages) {
      EXPECT_TRUE(keys.insert(m.meta.match_key).second)
          << "seed " << seed << ": duplicate " << m.meta.match_key;
    }
    EXPECT_EQ(keys.size(), 13u) << "seed " << seed;
    EXPECT_EQ(store.window_count(), 5u) << "seed " << seed;
  }
}

TEST(InitialSyncSession, UidvalidityChangeForcesInitialSyncAndRematches) {
  sim::SimLocal local;
  RemoteStore store(StoreOptions(3));
  for (int i = 0; i < 5; ++i) local.AppendQuiet(Meta("m" + std::to_string(i), i));
  ASSERT_TRUE(sim::RunSession(&local, &store, {}, nullptr).status.ok());
  local.RenumberUids();
  sim::RunResult r = sim::RunSession(&local, &store, {}, nullptr);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.kind, SyncKind::kInitial);
  EXPECT_EQ(local.messages.size(), 5u);
  EXPECT_EQ(store.window_count(), 3u);
  for (const auto& [l, rid] : local.map.pairs()) {
    EXPECT_EQ(l.uidvalidity, local.uidvalidity);
  }
  r = sim::RunSession(&local, &store, {}, nullptr);
  EXPECT_EQ(r.kind, SyncKind::kUpdate);
}

TEST(UpdateSyncSession, DeliverAndFiledAsSentReachTheOtherSide) {
  sim::SimLocal local;
  RemoteStore store(StoreOptions(3));
  ASSERT_TRUE(sim::RunSession(&local, &store, {}, nullptr).status.ok());
  store.DeviceCompose(Meta("composed-on-phone", 10));
  local.FileSent(Meta("sent-from-dovecot", 11));
  sim::RunResult r = sim::RunSession(&local, &store, {}, nullptr);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(local.sent.count("composed-on-phone"), 1u);
  EXPECT_EQ(store.sent_keys().count("sent-from-dovecot"), 1u);
  EXPECT_TRUE(local.actions.empty());
  EXPECT_TRUE(store.actions().empty());
}

}  // namespace
}  // namespace mobilesync::engine
