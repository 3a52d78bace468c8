// Seed 003's compare agent: figures 9A and 9B, and the precedence D > M > R > U
// with its per-user alternatives.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sync_agent/engine/list_compare.h"
#include "sync_agent/engine/precedence.h"

namespace mobilesync::engine {
namespace {

constexpr MessageState U = MessageState::kUnread;
constexpr MessageState R = MessageState::kRead;
constexpr MessageState M = MessageState::kTrash;
constexpr MessageState D = MessageState::kDestroyed;

std::string Letters(const std::vector<DatabaseRecord>& recs) {
  std::string s;
  for (const DatabaseRecord& r : recs) {
    if (!s.empty()) s += ' ';
    s += r.uid + ":" + std::to_string(r.seq) + MessageStateLetter(r.state);
  }
  return s;
}

// Figure 9A: the mail server list 902 (UIDs) against the database list 904
// (UID, sequence number, state). Message 2 is no longer on the mail server:
// its record goes (synchronised list 920). Record 3 is in state 'D': it goes
// to the deletion agent.
TEST(CompareAgent, Figure9AMailServerAgainstDatabase) {
  std::vector<std::string> server = {"uid1", "uid3", "uid4", "uid5"};
  std::vector<DatabaseRecord> db = {{"uid1", 1, U},
                                    {"uid2", 2, R},
                                    {"uid3", 3, D},
                                    {"uid4", 4, R},
                                    {"uid5", 5, M}};
  CompareResult r = CompareServerWithDatabase(server, db);
  EXPECT_EQ(Letters(r.synchronized), "uid1:1U uid4:4R uid5:5M");
  EXPECT_EQ(Letters(r.removed), "uid2:2R");
  EXPECT_EQ(Letters(r.to_delete), "uid3:3D");
}

TEST(CompareAgent, Figure9ANewServerMessagesAreLeftToTheRetrieveAgent) {
  CompareResult r =
      CompareServerWithDatabase({"a", "new", "b"}, {{"a", 1, U}, {"b", 2, R}});
  EXPECT_EQ(Letters(r.synchronized), "a:1U b:2R");
  EXPECT_TRUE(r.removed.empty());
}

// Figure 9B: a client list 936 (UID, state) against the database list 938.
// Where the states differ, the one of higher precedence goes into the
// synchronised list 950; 'D' also goes to the deletion agent.
TEST(CompareAgent, Figure9BClientAgainstDatabase) {
  std::vector<ClientRecord> client = {
      {"uid1", R}, {"uid2", U}, {"uid3", M}, {"uid4", D}, {"uid5", U}};
  std::vector<DatabaseRecord> db = {{"uid1", 1, U},
                                    {"uid2", 2, R},
                                    {"uid3", 3, R},
                                    {"uid4", 4, M},
                                    {"uid5", 5, U},
                                    {"uid6", 6, U}};
  CompareResult r = CompareClientWithDatabase(client, db);
  EXPECT_EQ(Letters(r.synchronized),
            "uid1:1R uid2:2R uid3:3M uid4:4D uid5:5U uid6:6U");
  EXPECT_EQ(Letters(r.to_delete), "uid4:4D");
}

TEST(CompareAgent, Figure9BWithMailboxWinsKeepsTheClientsState) {
  CompareResult r = CompareClientWithDatabase(
      {{"a", U}, {"b", R}}, {{"a", 1, M}, {"b", 2, U}},
      ConflictPolicy::kMailboxWins);
  EXPECT_EQ(Letters(r.synchronized), "a:1U b:2R");
}

TEST(Precedence, DestroyedBeatsTrashBeatsReadBeatsUnread) {
  const MessageState order[] = {U, R, M, D};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      MessageState want = order[std::max(i, j)];
      EXPECT_EQ(ResolveConflict(order[i], order[j],
                                ConflictPolicy::kStatePrecedence),
                want)
          << i << " vs " << j;
    }
  }
}

TEST(Precedence, MailboxAndHandheldWinsExceptAgainstADestroy) {
  EXPECT_EQ(ResolveConflict(U, M, ConflictPolicy::kMailboxWins), U);
  EXPECT_EQ(ResolveConflict(U, M, ConflictPolicy::kHandheldWins), M);
  EXPECT_EQ(ResolveConflict(M, R, ConflictPolicy::kHandheldWins), R);
  EXPECT_EQ(ResolveConflict(R, D, ConflictPolicy::kMailboxWins), D);
  EXPECT_EQ(ResolveConflict(D, U, ConflictPolicy::kHandheldWins), D);
}

TEST(Precedence, ParsesPolicyNames) {
  ConflictPolicy p = ConflictPolicy::kStatePrecedence;
  EXPECT_TRUE(ParseConflictPolicy("handheld-wins", &p));
  EXPECT_EQ(p, ConflictPolicy::kHandheldWins);
  EXPECT_TRUE(ParseConflictPolicy("mailbox-wins", &p));
  EXPECT_EQ(p, ConflictPolicy::kMailboxWins);
  EXPECT_FALSE(ParseConflictPolicy("phone-wins", &p));
  EXPECT_EQ(p, ConflictPolicy::kMailboxWins);
  EXPECT_STREQ(ConflictPolicyName(ConflictPolicy::kStatePrecedence),
               "state-precedence");
}

}  // namespace
}  // namespace mobilesync::engine
