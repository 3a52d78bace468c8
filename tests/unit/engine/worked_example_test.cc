// Seed 000's worked example, paragraphs [0076]-[0084]: a ten-message computer
// inbox (C1..C10) and a six-slot telephone inbox (21, 54, 7, 14, 70, -),
// through initial sync, normalisation and pull, then an update sync.
//
// Slot 1 is the newest message. The telephone ids the server assigns are the
// patent's own (the store's id allocator hands them out in the patent's
// order), so every table is asserted exactly; local uids follow the patent's
// C numbering because the engine appends fetched mail newest first.
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "sync_agent/engine/remote_store_model.h"
#include "sync_agent/engine/sync_session.h"
#include "sync_agent/engine/update_sync.h"
#include "unit/engine/sim.h"

namespace mobilesync::engine {
namespace {

using sim::SimLocal;
using Phase = SyncSession::Phase;
// One row of a table: computer id ("C11") and its mapping (0: none).
using Row = std::pair<std::string, RemoteId>;

MessageMeta Meta(const std::string& key, int64_t date) {
  MessageMeta m;
  m.match_key = key;
  m.date = date;
  return m;
}

// The computer's inbox as the patent draws it: newest first, "C<uid>".
std::vector<Row> ComputerTable(const SimLocal& local) {
  std::vector<const LocalMessage*> msgs;
  for (const auto& [uid, m] : local.messages) msgs.push_back(&m);
  std::sort(msgs.begin(), msgs.end(), [](const LocalMessage* a,
                                         const LocalMessage* b) {
    return NewerFirst(a->meta, b->meta);
  });
  std::vector<Row> rows;
  for (const LocalMessage* m : msgs) {
    const RemoteId* r = local.map.FindRemote(m->id);
    rows.emplace_back("C" + std::to_string(m->id.uid), r ? *r : 0);
  }
  return rows;
}

std::vector<RemoteId> TelephoneTable(const RemoteStore& store) {
  std::vector<RemoteId> ids;
  for (const RemoteMessage& m : store.Window()) ids.push_back(m.id);
  return ids;
}

class WorkedExample : public ::testing::Test {
 protected:
  void SetUp() override {
    // Telephone ids in the order the patent's server hands them out, but
    // for the pull: ours sends the window oldest first (C5..C1, so that ids
    // grow with age as the server's tie-break expects), and the patent's
    // 100, 16, 58, 2, 115 for C1..C5 come in reverse.
    ids_ = {21, 54, 7, 14, 70, 115, 2, 58, 16, 100, 129, 95};
    RemoteStoreOptions o;
    o.window.size = 6;
    store_ = std::make_unique<RemoteStore>(o, [this] {
      RemoteId id = ids_.front();
      ids_.pop_front();
      return id;
    });
    // Computer: C1 (newest) .. C10. Dates leave room for the telephone's
    // messages: 21 falls between C2 and C3, 54..70 after C10.
    for (int i = 1; i <= 10; ++i) {
      local_.AppendQuiet(Meta("c" + std::to_string(i), 1000 - 10 * (i - 1)));
    }
    const std::pair<const char*, int64_t> phone[] = {
        {"t21", 985}, {"t54", 900}, {"t7", 890}, {"t14", 880}, {"t70", 870}};
    for (const auto& [key, date] : phone) store_->DeviceDeliver(Meta(key, date));
    options_.server_in_flight = 4;
    options_.session.flight.max_in_flight = 4;
  }

  // Runs a clean session, recording the tables each time a phase ends.
  void Sync() {
    tables_.clear();
    options_.observer = [this](Phase left, const SyncSession&) {
      tables_[left] = {ComputerTable(local_), TelephoneTable(*store_)};
    };
    sim::RunResult r = sim::RunSession(&local_, store_.get(), options_,
                                       nullptr);
    ASSERT_FALSE(r.crashed);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    tables_[Phase::kDone] = {ComputerTable(local_), TelephoneTable(*store_)};
  }

  void InitialSync() {
    ASSERT_NO_FATAL_FAILURE(Sync());
    ASSERT_EQ(local_.generation, store_->generation());
  }

  struct Tables {
    std::vector<Row> computer;
    std::vector<RemoteId> telephone;
  };

  std::deque<RemoteId> ids_;
  std::unique_ptr<RemoteStore> store_;
  SimLocal local_;
  sim::RunOptions options_;
  std::map<Phase, Tables> tables_;
};

TEST_F(WorkedExample, StartingInboxes) {
  EXPECT_EQ(ComputerTable(local_).size(), 10u);
  EXPECT_EQ(TelephoneTable(*store_), (std::vector<RemoteId>{21, 54, 7, 14, 70}));
}

// [0076]: the telephone's messages are fetched, inserted in date order and
// mapped; C11 lands in slot 3, C3..C10 shift down, C12..C15 fill 12-15.
TEST_F(WorkedExample, InitialSyncInsertsAndMapsTelephoneMessages) {
  ASSERT_NO_FATAL_FAILURE(InitialSync());
  const Tables& t = tables_.at(Phase::kFetch);
  EXPECT_EQ(t.computer,
            (std::vector<Row>{{"C1", 0},   {"C2", 0},   {"C11", 21},
                              {"C3", 0},   {"C4", 0},   {"C5", 0},
                              {"C6", 0},   {"C7", 0},   {"C8", 0},
                              {"C9", 0},   {"C10", 0},  {"C12", 54},
                              {"C13", 7},  {"C14", 14}, {"C15", 70}}));
  EXPECT_EQ(t.telephone, (std::vector<RemoteId>{21, 54, 7, 14, 70}));
}

// [0077]: normalisation removes 54, 7, 14 and 70 from the telephone (not
// among the six newest), drops their mappings, destroys nothing locally.
TEST_F(WorkedExample, NormalisationUnmapsMessagesOutsideTheWindow) {
  ASSERT_NO_FATAL_FAILURE(InitialSync());
  const Tables& t = tables_.at(Phase::kNormalise);
  EXPECT_EQ(t.computer,
            (std::vector<Row>{{"C1", 0},  {"C2", 0},  {"C11", 21},
                              {"C3", 0},  {"C4", 0},  {"C5", 0},
                              {"C6", 0},  {"C7", 0},  {"C8", 0},
                              {"C9", 0},  {"C10", 0}, {"C12", 0},
                              {"C13", 0}, {"C14", 0}, {"C15", 0}}));
  EXPECT_EQ(t.telephone, (std::vector<RemoteId>{21}));
}

// [0078]: pull fills the telephone with C1, C2, C3, C4, C5, each mapped from
// the id in the server's ack; both inboxes now list the same six messages.
TEST_F(WorkedExample, PullFillsTheTelephoneInbox) {
  ASSERT_NO_FATAL_FAILURE(InitialSync());
  const Tables& t = tables_.at(Phase::kDone);
  EXPECT_EQ(t.computer,
            (std::vector<Row>{{"C1", 100}, {"C2", 16}, {"C11", 21},
                              {"C3", 58},  {"C4", 2},  {"C5", 115},
                              {"C6", 0},   {"C7", 0},  {"C8", 0},
                              {"C9", 0},   {"C10", 0}, {"C12", 0},
                              {"C13", 0},  {"C14", 0}, {"C15", 0}}));
  EXPECT_EQ(t.telephone, (std::vector<RemoteId>{100, 16, 21, 58, 2, 115}));
  EXPECT_TRUE(store_->actions().empty());
}

class WorkedExampleUpdate : public WorkedExample {
 protected:
  void SetUp() override {
    WorkedExample::SetUp();
    ASSERT_NO_FATAL_FAILURE(InitialSync());
    // [0080]-[0081]: on the computer, C1 is deleted and C2 is read.
    local_.Destroy(local_.IdOf(1));
    local_.SetState(local_.IdOf(2), MessageState::kRead);
    // [0083]: on the telephone, 129 arrives and 2 (C4) is deleted. The
    // patent lists "INSERT 129" first, but with six full slots 129 arriving
    // first would make the garbage collector drop 115, which the patent's
    // next table still shows mapped to C5: so the delete came first.
    ASSERT_TRUE(store_->DeviceDestroy(2).ok());
    store_->DeviceDeliver(Meta("t129", 1010));
  }
};

TEST_F(WorkedExampleUpdate, ActionListsBeforeTheUpdate) {
  // Computer's list, as sent ([0081]): DELETE MSG (100), MARK MSG (16) READ.
  LocalView view(local_.Snapshot().messages);
  ReplayPlan plan = PlanReplay(local_.actions.entries(), view, local_.map,
                               WindowPolicy{6, false});
  ASSERT_EQ(plan.send.size(), 2u);
  EXPECT_EQ(plan.send[0].kind, ActionKind::kDestroy);
  EXPECT_EQ(plan.send[0].remote, 100u);
  EXPECT_EQ(plan.send[1].kind, ActionKind::kMarkRead);
  EXPECT_EQ(plan.send[1].remote, 16u);
  EXPECT_TRUE(plan.skip.empty());
  // Telephone's list ([0083]): DELETE MSG (2) and INSERT MSG (129).
  const auto& server = store_->actions().entries();
  ASSERT_EQ(server.size(), 2u);
  EXPECT_EQ(server[0].kind, ActionKind::kDestroy);
  EXPECT_EQ(server[0].remote, 2u);
  EXPECT_EQ(server[1].kind, ActionKind::kInsert);
  EXPECT_EQ(server[1].remote, 129u);
}

// [0082]: the computer's actions reach the telephone: 100 is gone, 16 is
// marked read.
TEST_F(WorkedExampleUpdate, ComputerActionsUpdateTheTelephone) {
  ASSERT_NO_FATAL_FAILURE(Sync());
  EXPECT_EQ(tables_.at(Phase::kReplay).telephone,
            (std::vector<RemoteId>{129, 16, 21, 58, 115}));
  EXPECT_EQ(store_->Find(16)->meta.state, MessageState::kRead);
  EXPECT_TRUE(local_.actions.empty());
}

// [0083]: after the swap the telephone's actions reach the computer: C16 is
// added and mapped to 129, C4 (telephone 2) is gone, C1 stays gone.
TEST_F(WorkedExampleUpdate, SwapAppliesTelephoneActionsToTheComputer) {
  ASSERT_NO_FATAL_FAILURE(Sync());
  EXPECT_EQ(tables_.at(Phase::kSwap).computer,
            (std::vector<Row>{{"C16", 129}, {"C2", 16},  {"C11", 21},
                              {"C3", 58},   {"C5", 115}, {"C6", 0},
                              {"C7", 0},    {"C8", 0},   {"C9", 0},
                              {"C10", 0},   {"C12", 0},  {"C13", 0},
                              {"C14", 0},   {"C15", 0}}));
  EXPECT_EQ(local_.Find(local_.IdOf(2))->meta.state, MessageState::kRead);
}

// [0084]: pull adds 95 (C6) to slot 6. The patent's last table lost C16's
// row and its columns slid by one; we follow the text: one message, 95,
// fills the free slot.
TEST_F(WorkedExampleUpdate, PullRefillsTheWindowAfterTheUpdate) {
  ASSERT_NO_FATAL_FAILURE(Sync());
  const Tables& t = tables_.at(Phase::kDone);
  EXPECT_EQ(t.computer,
            (std::vector<Row>{{"C16", 129}, {"C2", 16},  {"C11", 21},
                              {"C3", 58},   {"C5", 115}, {"C6", 95},
                              {"C7", 0},    {"C8", 0},   {"C9", 0},
                              {"C10", 0},   {"C12", 0},  {"C13", 0},
                              {"C14", 0},   {"C15", 0}}));
  EXPECT_EQ(t.telephone, (std::vector<RemoteId>{129, 16, 21, 58, 115, 95}));
  EXPECT_TRUE(store_->actions().empty());
  EXPECT_TRUE(local_.actions.empty());
}

// Running the whole example again changes nothing: no duplicates, no loss.
TEST_F(WorkedExampleUpdate, SecondUpdateSyncIsANoop) {
  ASSERT_NO_FATAL_FAILURE(Sync());
  std::vector<Row> computer = ComputerTable(local_);
  std::vector<RemoteId> telephone = TelephoneTable(*store_);
  ASSERT_NO_FATAL_FAILURE(Sync());
  EXPECT_EQ(ComputerTable(local_), computer);
  EXPECT_EQ(TelephoneTable(*store_), telephone);
}

}  // namespace
}  // namespace mobilesync::engine
