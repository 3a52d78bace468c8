// SqliteStore: the window of N, the garbage collector, idempotent apply of
// the agent's actions, the action list's order, conflicts, and consistency
// after kill -9 (a child process killed in the middle of a batch, the
// database reopened).
#include "sync_server/store/sqlite_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "harness/process.h"
#include "harness/temp_dir.h"

namespace mobilesync::server {
namespace {

using testing::TempDir;

std::string Msg(const std::string& subject, const std::string& mid = "") {
  return "From: a@example.test\r\nSubject: " + subject + "\r\n" +
         (mid.empty() ? "" : "Message-ID: <" + mid + ">\r\n") + "\r\nbody of " + subject + "\r\n";
}

AgentAction Insert(const std::string& key, int64_t date,
                   MessageState state = MessageState::kUnread) {
  AgentAction a;
  a.kind = ActionKind::kInsert;
  a.insert_key = key;
  a.date = date;
  a.state = state;
  a.message_id = "<" + key + "@example.test>";
  a.body = Msg("agent " + key);
  return a;
}

AgentAction Change(ActionKind kind, uint64_t id) {
  AgentAction a;
  a.kind = kind;
  a.remote_id = id;
  return a;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    store_.reset();
    ASSERT_TRUE(SqliteStore::Open(dir_.Sub("store.db"), &store_).ok());
  }
  std::vector<uint64_t> WindowIds(const std::string& user = "alice") {
    std::vector<MessageRecord> w;
    EXPECT_TRUE(store_->ListWindow(user, &w).ok());
    std::vector<uint64_t> ids;
    for (const auto& m : w) ids.push_back(m.id);
    return ids;
  }
  std::vector<ServerAction> Actions(const std::string& user = "alice") {
    std::vector<ServerAction> a;
    EXPECT_TRUE(store_->PendingActions(user, 0, 1000, &a).ok());
    return a;
  }
  void DrainActions(const std::string& user = "alice") {
    for (const auto& a : Actions(user)) ASSERT_TRUE(store_->RemoveAction(user, a.seq).ok());
  }
  TempDir dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(SqliteStoreTest, UnknownUserIsNotFound) {
  UserInfo info;
  EXPECT_TRUE(store_->GetUser("nobody", &info).IsNotFound());
  uint64_t id;
  EXPECT_FALSE(store_->DeviceInsert("nobody", Msg("x"), 1, &id).ok());
}

TEST_F(SqliteStoreTest, DeviceInsertListsNewestFirstAndRecordsInserts) {
  ASSERT_TRUE(store_->EnsureUser("alice", 6).ok());
  uint64_t a, b, c;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("one"), 100, &a).ok());
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("three"), 300, &c).ok());
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("two"), 200, &b).ok());
  EXPECT_EQ(WindowIds(), (std::vector<uint64_t>{c, b, a}));
  std::vector<MessageRecord> w;
  ASSERT_TRUE(store_->ListWindow("alice", &w).ok());
  EXPECT_EQ(w[0].subject, "three");
  EXPECT_EQ(w[0].from, "a@example.test");
  auto acts = Actions();
  ASSERT_EQ(acts.size(), 3u);
  EXPECT_EQ(acts[0].remote_id, a);
  EXPECT_EQ(acts[1].remote_id, c);
  EXPECT_EQ(acts[2].remote_id, b);
  for (const auto& x : acts) EXPECT_EQ(x.kind, ActionKind::kInsert);
  MessageRecord m;
  ASSERT_TRUE(store_->GetMessage("alice", b, &m).ok());
  EXPECT_NE(m.body.find("body of two"), std::string::npos);
  EXPECT_TRUE(store_->GetMessage("alice", 999, &m).IsNotFound());
  EXPECT_TRUE(store_->GetMessage("bob", b, &m).IsNotFound());
}

TEST_F(SqliteStoreTest, ActionListKeepsDeviceOrder) {
  ASSERT_TRUE(store_->EnsureUser("alice", 6).ok());
  uint64_t id;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("m"), 100, &id).ok());
  DrainActions();
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kRead).ok());
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kRead).ok());  // no change
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kTrash).ok());
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kUnread).ok());
  auto acts = Actions();
  ASSERT_EQ(acts.size(), 3u);
  EXPECT_EQ(acts[0].kind, ActionKind::kMarkRead);
  EXPECT_EQ(acts[1].kind, ActionKind::kTrash);
  EXPECT_EQ(acts[2].kind, ActionKind::kRestore);
  EXPECT_LT(acts[0].seq, acts[1].seq);
  EXPECT_LT(acts[1].seq, acts[2].seq);
  // Reading after an offset returns the rest, in order.
  std::vector<ServerAction> rest;
  ASSERT_TRUE(store_->PendingActions("alice", acts[0].seq, 10, &rest).ok());
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].seq, acts[1].seq);
  EXPECT_TRUE(store_->DeviceSetState("alice", 4242, MessageState::kRead).IsNotFound());
}

TEST_F(SqliteStoreTest, GarbageCollectorUnmapsTheOldestBeyondN) {
  ASSERT_TRUE(store_->EnsureUser("alice", 3).ok());
  ApplyResult r;
  std::vector<uint64_t> ids;
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k" + std::to_string(i), i * 100), &r).ok());
    EXPECT_TRUE(r.collected.empty());
    ids.push_back(r.assigned_id);
  }
  // The fourth, newer message pushes out the oldest (the agent's copy stays:
  // only an UNMAP is recorded, no destroy).
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k4", 400), &r).ok());
  EXPECT_EQ(r.collected, std::vector<uint64_t>{ids[0]});
  EXPECT_EQ(WindowIds(), (std::vector<uint64_t>{r.assigned_id, ids[2], ids[1]}));
  auto acts = Actions();
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_EQ(acts[0].kind, ActionKind::kUnmap);
  EXPECT_EQ(acts[0].remote_id, ids[0]);
  // An insert older than the whole window is collected at once.
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k0", 50), &r).ok());
  EXPECT_EQ(r.collected, std::vector<uint64_t>{r.assigned_id});
  // Destroyed messages never count, and shrinking N collects.
  ASSERT_TRUE(store_->EnsureUser("alice", 1).ok());
  EXPECT_EQ(WindowIds().size(), 1u);
  EXPECT_TRUE(store_->Check().ok()) << store_->Check().ToString();
}

TEST_F(SqliteStoreTest, GarbageCollectorNeverDropsAnUnsyncedDeviceInsert) {
  ASSERT_TRUE(store_->EnsureUser("alice", 2).ok());
  uint64_t old_id, a, b;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("old"), 10, &old_id).ok());
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("a"), 20, &a).ok());
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("b"), 30, &b).ok());
  // Over N, but the organisation has never seen "old": it stays.
  EXPECT_EQ(WindowIds().size(), 3u);
  DrainActions();  // the agent acknowledged the inserts
  std::vector<uint64_t> collected;
  ASSERT_TRUE(store_->CollectGarbage("alice", &collected).ok());
  EXPECT_EQ(collected, std::vector<uint64_t>{old_id});
  EXPECT_EQ(WindowIds(), (std::vector<uint64_t>{b, a}));
}

TEST_F(SqliteStoreTest, ReSentInsertIsNotAppliedTwice) {
  ASSERT_TRUE(store_->EnsureUser("alice", 10).ok());
  ApplyResult r1, r2;
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("key-1", 100), &r1).ok());
  EXPECT_EQ(r1.outcome, ApplyOutcome::kApplied);
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("key-1", 100), &r2).ok());
  EXPECT_EQ(r2.outcome, ApplyOutcome::kAlreadyApplied);
  EXPECT_EQ(r2.assigned_id, r1.assigned_id);
  EXPECT_EQ(WindowIds().size(), 1u);
  // Insert keys are per user.
  ASSERT_TRUE(store_->EnsureUser("bob", 10).ok());
  ASSERT_TRUE(store_->ApplyAgentAction("bob", Insert("key-1", 100), &r2).ok());
  EXPECT_EQ(r2.outcome, ApplyOutcome::kApplied);
  EXPECT_EQ(WindowIds("bob").size(), 1u);
  // State changes and destroys are idempotent too.
  ApplyResult r;
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kMarkRead, r1.assigned_id), &r).ok());
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kMarkRead, r1.assigned_id), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kApplied);
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kDestroy, r1.assigned_id), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kApplied);
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kDestroy, r1.assigned_id), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kNoop);
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kMarkUnread, r1.assigned_id), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kNoop);
  // A re-sent insert of a destroyed message does not bring it back.
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("key-1", 100), &r2).ok());
  EXPECT_EQ(r2.outcome, ApplyOutcome::kAlreadyApplied);
  EXPECT_TRUE(WindowIds().empty());
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kMarkRead, 777), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kUnknownId);
  EXPECT_TRUE(Actions().empty());
}

TEST_F(SqliteStoreTest, ConflictsFollowStatePrecedence) {
  ASSERT_TRUE(store_->EnsureUser("alice", 10).ok());
  ApplyResult r;
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k", 100), &r).ok());
  uint64_t id = r.assigned_id;
  // Device trashed it; the agent says read: trash wins, the device's action
  // stays to travel to the agent.
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kTrash).ok());
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kMarkRead, id), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kSuperseded);
  ASSERT_EQ(Actions().size(), 1u);
  MessageRecord m;
  ASSERT_TRUE(store_->GetMessage("alice", id, &m).ok());
  EXPECT_EQ(m.state, MessageState::kTrash);
  // The agent destroys it: destroy beats everything and our action goes.
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kDestroy, id), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kApplied);
  EXPECT_TRUE(Actions().empty());
  EXPECT_TRUE(store_->GetMessage("alice", id, &m).IsNotFound());

  // Device marked read, agent trashed: the agent's trash wins and the
  // device's mark-read no longer travels.
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k2", 100), &r).ok());
  id = r.assigned_id;
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kRead).ok());
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kTrash, id), &r).ok());
  EXPECT_EQ(r.outcome, ApplyOutcome::kApplied);
  EXPECT_TRUE(Actions().empty());
  ASSERT_TRUE(store_->GetMessage("alice", id, &m).ok());
  EXPECT_EQ(m.state, MessageState::kTrash);
  // Restore goes back to the state before the trash.
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Change(ActionKind::kRestore, id), &r).ok());
  ASSERT_TRUE(store_->GetMessage("alice", id, &m).ok());
  EXPECT_EQ(m.state, MessageState::kRead);
}

TEST_F(SqliteStoreTest, DeviceRestoreReturnsToTheStateBeforeTrash) {
  ASSERT_TRUE(store_->EnsureUser("alice", 10).ok());
  uint64_t id;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("x"), 1, &id).ok());
  EXPECT_TRUE(store_->DeviceRestore("alice", id).IsInvalidArgument());  // not in Trash
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kRead).ok());
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kTrash).ok());
  ASSERT_TRUE(store_->DeviceRestore("alice", id).ok());
  MessageRecord m;
  ASSERT_TRUE(store_->GetMessage("alice", id, &m).ok());
  EXPECT_EQ(m.state, MessageState::kRead);
  EXPECT_EQ(Actions().back().kind, ActionKind::kRestore);
  EXPECT_TRUE(store_->DeviceRestore("alice", 999).IsNotFound());
}

TEST_F(SqliteStoreTest, DestroyOnTheDeviceOfAnUnsyncedMessageLeavesNoTrace) {
  ASSERT_TRUE(store_->EnsureUser("alice", 10).ok());
  uint64_t id;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("x"), 1, &id).ok());
  ASSERT_TRUE(store_->DeviceSetState("alice", id, MessageState::kDestroyed).ok());
  EXPECT_TRUE(Actions().empty());
  uint64_t id2;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("y"), 1, &id2).ok());
  DrainActions();
  ASSERT_TRUE(store_->DeviceSetState("alice", id2, MessageState::kDestroyed).ok());
  auto acts = Actions();
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_EQ(acts[0].kind, ActionKind::kDestroy);
  EXPECT_TRUE(WindowIds().empty());
  EXPECT_TRUE(store_->Check().ok());
}

TEST_F(SqliteStoreTest, ComposeViaSyncQueuesDeliverAndDirectRecordsSent) {
  ASSERT_TRUE(store_->EnsureUser("alice", 10).ok());
  OutboxItem q{0, "bob@example.test", "hi", Msg("hi"), true, false};
  uint64_t qid, did;
  ASSERT_TRUE(store_->DeviceCompose("alice", q, &qid).ok());
  q.via_sync = false;
  ASSERT_TRUE(store_->DeviceCompose("alice", q, &did).ok());
  auto acts = Actions();
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_EQ(acts[0].kind, ActionKind::kDeliver);
  EXPECT_EQ(acts[0].remote_id, qid);
  ASSERT_TRUE(store_->MarkOutboxSent("alice", did).ok());
  ASSERT_TRUE(store_->MarkOutboxSent("alice", did).ok());  // once only
  acts = Actions();
  ASSERT_EQ(acts.size(), 2u);
  EXPECT_EQ(acts[1].kind, ActionKind::kFiledAsSent);
  // An initial sync drops what the list comparison subsumed, never DELIVER.
  uint64_t gen = 0;
  UserInfo info;
  ASSERT_TRUE(store_->GetUser("alice", &info).ok());
  ASSERT_TRUE(store_->CommitInitialSync("alice", info.last_action_seq, &gen).ok());
  EXPECT_NE(gen, 0u);
  acts = Actions();
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_EQ(acts[0].kind, ActionKind::kDeliver);
  ASSERT_TRUE(store_->RemoveAction("alice", acts[0].seq).ok());
  OutboxItem item;
  ASSERT_TRUE(store_->GetOutboxItem("alice", qid, &item).ok());
  EXPECT_TRUE(item.done);
  ASSERT_TRUE(store_->GetUser("alice", &info).ok());
  EXPECT_EQ(info.generation, gen);
}

TEST_F(SqliteStoreTest, StateSurvivesReopen) {
  ASSERT_TRUE(store_->EnsureUser("alice", 4).ok());
  ApplyResult r;
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k", 100), &r).ok());
  uint64_t dev;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("d"), 50, &dev).ok());
  Reopen();
  EXPECT_EQ(WindowIds(), (std::vector<uint64_t>{r.assigned_id, dev}));
  EXPECT_EQ(Actions().size(), 1u);
  uint64_t next;
  ASSERT_TRUE(store_->DeviceInsert("alice", Msg("e"), 60, &next).ok());
  EXPECT_GT(next, dev);  // ids are never reused
  EXPECT_TRUE(store_->Check().ok());
}

// Group commit: what a batch applied is durable after EndBatch and gone if
// the process dies before it; a call that fails inside a batch undoes only
// its own changes.
TEST_F(SqliteStoreTest, BatchCommitsAtEndBatchOnly) {
  ASSERT_TRUE(store_->EnsureUser("alice", 100).ok());
  ASSERT_TRUE(store_->BeginBatch().ok());
  EXPECT_FALSE(store_->BeginBatch().ok());  // not nested
  ApplyResult a, b;
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k1", 100), &a).ok());
  uint64_t id = 0;
  EXPECT_FALSE(store_->DeviceInsert("nobody", Msg("x"), 1, &id).ok());  // rolls back itself only
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k2", 200), &b).ok());
  ApplyResult unknown;
  ASSERT_TRUE(
      store_->ApplyAgentAction("alice", Change(ActionKind::kMarkRead, 4242), &unknown).ok());
  EXPECT_EQ(unknown.outcome, ApplyOutcome::kUnknownId);
  EXPECT_EQ(WindowIds(), (std::vector<uint64_t>{b.assigned_id, a.assigned_id}));  // seen inside
  ASSERT_TRUE(store_->EndBatch().ok());
  ASSERT_TRUE(store_->EndBatch().ok());  // no batch open: nothing to do
  Reopen();
  EXPECT_EQ(WindowIds(), (std::vector<uint64_t>{b.assigned_id, a.assigned_id}));
  EXPECT_TRUE(store_->Check().ok());
}

TEST_F(SqliteStoreTest, BatchNotEndedIsLostWhole) {
  ASSERT_TRUE(store_->EnsureUser("alice", 100).ok());
  ApplyResult before;
  ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k0", 50), &before).ok());
  store_.reset();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::unique_ptr<SqliteStore> s;
    if (!SqliteStore::Open(dir_.Sub("store.db"), &s).ok()) _exit(2);
    if (!s->BeginBatch().ok()) _exit(3);
    ApplyResult r;
    for (int i = 1; i <= 50; ++i) {
      if (!s->ApplyAgentAction("alice", Insert("k" + std::to_string(i), 100 + i), &r).ok())
        _exit(4);
    }
    kill(getpid(), SIGKILL);  // dies with the batch open
    _exit(5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit " << WEXITSTATUS(status);
  Reopen();
  EXPECT_EQ(WindowIds(), (std::vector<uint64_t>{before.assigned_id}));
  EXPECT_TRUE(store_->Check().ok());
}

// A child applies a long batch of inserts and state changes; the parent
// kills it with SIGKILL mid-batch. The reopened store is consistent, and
// re-sending the whole batch applies each insert exactly once.
TEST_F(SqliteStoreTest, KillNineMidBatchLeavesAConsistentStore) {
  ASSERT_TRUE(store_->EnsureUser("alice", 1000).ok());
  store_.reset();
  const int kBatch = 400;
  std::string progress = dir_.Sub("progress");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::unique_ptr<SqliteStore> s;
    if (!SqliteStore::Open(dir_.Sub("store.db"), &s).ok()) _exit(2);
    for (int i = 0; i < kBatch; ++i) {
      ApplyResult r;
      if (!s->ApplyAgentAction("alice", Insert("k" + std::to_string(i), 1000 + i), &r).ok()) _exit(3);
      if (!s->ApplyAgentAction("alice", Change(ActionKind::kMarkRead, r.assigned_id), &r).ok()) _exit(4);
      if (i == 20) {
        FILE* f = fopen(progress.c_str(), "w");
        if (f) fclose(f);
      }
    }
    _exit(0);
  }
  ASSERT_TRUE(testing::WaitFor([&] { return access(progress.c_str(), F_OK) == 0; }));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  Reopen();
  ASSERT_TRUE(store_->Check().ok()) << store_->Check().ToString();
  size_t before = WindowIds().size();
  EXPECT_GE(before, 21u);
  // Re-send everything: the applied part is recognised, the rest applied.
  std::set<uint64_t> ids;
  for (int i = 0; i < kBatch; ++i) {
    ApplyResult r;
    ASSERT_TRUE(store_->ApplyAgentAction("alice", Insert("k" + std::to_string(i), 1000 + i), &r).ok());
    if (static_cast<size_t>(i) < before) {
      EXPECT_EQ(r.outcome, ApplyOutcome::kAlreadyApplied) << i;
    }
    ids.insert(r.assigned_id);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kBatch));
  EXPECT_EQ(WindowIds().size(), static_cast<size_t>(kBatch));
  EXPECT_TRUE(store_->Check().ok());
}

TEST(HeaderValue, FindsUnfoldsAndStopsAtTheBody) {
  std::string m = "Subject: one\r\n two\r\nFrom: x@y\r\n\r\nSubject: not me\r\n";
  EXPECT_EQ(HeaderValue(m, "subject"), "one two");
  EXPECT_EQ(HeaderValue(m, "From"), "x@y");
  EXPECT_EQ(HeaderValue(m, "To"), "");
  EXPECT_EQ(HeaderValue("", "To"), "");
}

}  // namespace
}  // namespace mobilesync::server
