// UserRegistry: enabled users survive a reopen (an agent restart), batches
// are one transaction, sync results are recorded.
#include "sync_agent/user_registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "harness/temp_dir.h"
#include "sync_agent/control_server.h"
#include "sync_agent/quick_token.h"

namespace mobilesync::agent {
namespace {

TEST(UserRegistry, EnabledUsersSurviveAReopen) {
  testing::TempDir dir;
  const std::string path = dir.Sub("agent.db");
  {
    std::unique_ptr<UserRegistry> r;
    ASSERT_TRUE(UserRegistry::Open(path, &r).ok());
    std::vector<std::string> added;
    ASSERT_TRUE(r->Enable({"alice", "bob", "alice"}, "ctl", &added).ok());
    EXPECT_EQ(added, (std::vector<std::string>{"alice", "bob"}));
    ASSERT_TRUE(r->Enable({"bob", "carol"}, "userdb", &added).ok());
    EXPECT_EQ(added, std::vector<std::string>{"carol"});
    ASSERT_TRUE(r->RecordSync("alice", 1234, "ok", 3).ok());
    ASSERT_TRUE(r->Disable("bob").ok());
    EXPECT_TRUE(r->Disable("bob").IsNotFound());
    EXPECT_TRUE(r->RecordSync("nobody", 1, "ok", 0).IsNotFound());
  }
  std::unique_ptr<UserRegistry> r;
  ASSERT_TRUE(UserRegistry::Open(path, &r).ok());
  EXPECT_EQ(r->size(), 2u);
  const UserRecord* a = r->Find("alice");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->source, "ctl");
  EXPECT_EQ(a->last_sync_ms, 1234);
  EXPECT_EQ(a->last_result, "ok");
  EXPECT_EQ(a->pending_actions, 3);
  EXPECT_NE(a->enabled_at, 0);
  ASSERT_NE(r->Find("carol"), nullptr);
  EXPECT_EQ(r->Find("carol")->source, "userdb");
  EXPECT_EQ(r->Find("carol")->pending_actions, -1);
  EXPECT_EQ(r->Find("bob"), nullptr);
}

// The quick token is kept across a restart, replaced by each session's, and
// a registry written before the column existed gains it on open.
TEST(UserRegistry, QuickTokenSurvivesAReopenAndOldRegistriesGainIt) {
  testing::TempDir dir;
  const std::string path = dir.Sub("agent.db");
  {
    // The table as an older agent made it, with one user.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db,
                     "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL,"
                     " source TEXT NOT NULL DEFAULT '', enabled_at INTEGER NOT NULL DEFAULT 0,"
                     " last_sync INTEGER NOT NULL DEFAULT 0,"
                     " last_result TEXT NOT NULL DEFAULT '',"
                     " pending_actions INTEGER NOT NULL DEFAULT -1);"
                     "INSERT INTO users(name, source) VALUES('old', 'ctl');",
                     nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  {
    std::unique_ptr<UserRegistry> r;
    Status s = UserRegistry::Open(path, &r);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(r->Find("old"), nullptr);
    EXPECT_EQ(r->Find("old")->quick_token, "");
    ASSERT_TRUE(r->RecordSync("old", 5, "ok", 0, "v1 gen=1 n=2 ts=3 fp=x").ok());
    EXPECT_EQ(r->Find("old")->quick_token, "v1 gen=1 n=2 ts=3 fp=x");
    // Over the bound: not kept.
    ASSERT_TRUE(r->RecordSync("old", 6, "ok", 0, std::string(kMaxQuickTokenBytes + 1, 'x')).ok());
    EXPECT_EQ(r->Find("old")->quick_token, "");
    ASSERT_TRUE(r->RecordSync("old", 7, "ok", 0, "v1 gen=2 n=2 ts=3 fp=y").ok());
  }
  std::unique_ptr<UserRegistry> r;
  ASSERT_TRUE(UserRegistry::Open(path, &r).ok());
  ASSERT_NE(r->Find("old"), nullptr);
  EXPECT_EQ(r->Find("old")->quick_token, "v1 gen=2 n=2 ts=3 fp=y");
  EXPECT_EQ(r->Find("old")->last_sync_ms, 7);
  // A session without a token clears it.
  ASSERT_TRUE(r->RecordSync("old", 8, "ok", 0).ok());
  EXPECT_EQ(r->Find("old")->quick_token, "");
}

TEST(UserRegistry, TenThousandUsersInOneBatch) {
  testing::TempDir dir;
  std::unique_ptr<UserRegistry> r;
  ASSERT_TRUE(UserRegistry::Open(dir.Sub("agent.db"), &r).ok());
  std::vector<std::string> names;
  for (int i = 0; i < 10000; ++i) names.push_back("user" + std::to_string(i));
  std::vector<std::string> added;
  ASSERT_TRUE(r->Enable(names, "userdb", &added).ok());
  EXPECT_EQ(added.size(), 10000u);
  std::unique_ptr<UserRegistry> again;
  r.reset();
  ASSERT_TRUE(UserRegistry::Open(dir.Sub("agent.db"), &again).ok());
  EXPECT_EQ(again->size(), 10000u);
}

TEST(UserRegistry, UnwritablePathIsAnError) {
  std::unique_ptr<UserRegistry> r;
  Status s = UserRegistry::Open("/nonexistent/dir/agent.db", &r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("/nonexistent/dir/agent.db"), std::string::npos) << s.ToString();
}

TEST(ControlProtocol, WordsAndJsonEscaping) {
  EXPECT_EQ(SplitWords("  status  alice --json "),
            (std::vector<std::string>{"status", "alice", "--json"}));
  EXPECT_TRUE(SplitWords("   ").empty());
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace mobilesync::agent
