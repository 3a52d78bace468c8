// The plugin records every change of an enabled user as one action
// attribute, produced here by real IMAP and LMTP clients against a real
// Dovecot and read back with GETMETADATA, as the agent will read them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "harness/dovecot_instance.h"
#include "harness/fake_agent_socket.h"
#include "harness/metadata.h"
#include "plugin/action_record.h"

namespace mobilesync::testing {
namespace {

using plugin::ActionKind;
using plugin::ActionRecord;

const char kPrefix[] = "/private/vendor/vendor.mobilesync";
const char kActionPrefix[] = "/private/vendor/vendor.mobilesync/action/";

struct Action {
  std::string key;  // the sortable id
  ActionRecord rec;
};

class ActionList : public ::testing::Test {
 protected:
  void SetUp() override { Start(DovecotOptions()); }

  void Start(DovecotOptions o) {
    socket_path_ = sock_dir_.path() + "/agent.sock";
    o.users = {{"alice", "alice-pw", "userdb_mobilesync_enabled=yes"},
               {"bob", "bob-pw", ""}};
    o.plugin_settings += "mobilesync_agent_socket = " + socket_path_ + "\n";
    Status s = dovecot_.Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Every action of `user`, in key order (which is replay order).
  std::vector<Action> Actions(const std::string& user = "alice") {
    ImapTestClient imap;
    Status s = dovecot_.Login(user, &imap);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::map<std::string, std::string> entries;
    s = GetMetadata(&imap, "", kPrefix, &entries);
    EXPECT_TRUE(s.ok()) << s.ToString();
    imap.Logout();
    std::vector<Action> out;
    for (const auto& e : entries) {
      if (e.first.rfind(kActionPrefix, 0) != 0) continue;
      Action a;
      a.key = e.first.substr(strlen(kActionPrefix));
      Status p = plugin::ParseActionValue(e.second, &a.rec);
      EXPECT_TRUE(p.ok()) << p.ToString() << ": " << e.second;
      uint64_t ts;
      uint32_t pid, counter;
      EXPECT_TRUE(plugin::ParseActionKeyId(a.key, &ts, &pid, &counter).ok()) << a.key;
      out.push_back(a);
    }
    return out;
  }

  std::vector<Action> ActionsOfKind(ActionKind kind) {
    std::vector<Action> out;
    for (auto& a : Actions()) {
      if (a.rec.kind == kind) out.push_back(a);
    }
    return out;
  }

  uint32_t UidValidity(ImapTestClient* imap, const std::string& box) {
    ImapResponse r;
    EXPECT_TRUE(imap->Command("STATUS " + box + " (UIDVALIDITY)", &r).ok());
    std::string t = r.Text();
    size_t p = t.find("UIDVALIDITY ");
    return p == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(t.substr(p + 12)));
  }

  std::string Guid(ImapTestClient* imap, uint32_t uid) {
    ImapResponse r;
    EXPECT_TRUE(imap->Command("UID FETCH " + std::to_string(uid) + " (X-GUID)", &r).ok());
    std::string t = r.Text();
    size_t p = t.find("X-GUID ");
    if (p == std::string::npos) return "";
    std::string g = t.substr(p + 7);
    return g.substr(0, g.find_first_of(" )"));
  }

  void Cmd(ImapTestClient* imap, const std::string& command) {
    ImapResponse r;
    Status s = imap->Command(command, &r);
    ASSERT_TRUE(s.ok()) << command << ": " << s.ToString();
    ASSERT_TRUE(r.ok()) << command << ": " << r.tagged;
  }

  void Append(ImapTestClient* imap, const std::string& box, const std::string& flags = "") {
    ImapResponse r;
    ASSERT_TRUE(imap->Append(box, flags, MakeTestMessage("appended", "body"), &r).ok());
    ASSERT_TRUE(r.ok()) << r.tagged;
  }

  TempDir sock_dir_;
  std::string socket_path_;
  DovecotInstance dovecot_;
};

TEST_F(ActionList, LmtpDeliveryRecordsOneInsert) {
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("hi", "delivered")).ok());
  std::vector<Action> actions = Actions();
  ASSERT_EQ(actions.size(), 1u) << dovecot_.Log();
  const ActionRecord& r = actions[0].rec;
  EXPECT_EQ(r.kind, ActionKind::kInsert);
  EXPECT_EQ(r.box, "INBOX");
  EXPECT_EQ(r.uid, 1u);
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  EXPECT_EQ(r.uidvalidity, UidValidity(&imap, "INBOX"));
  Cmd(&imap, "SELECT INBOX");
  EXPECT_EQ(r.guid, Guid(&imap, 1));
  EXPECT_FALSE(r.guid.empty());
  // The key's time and the record's time are the same instant.
  uint64_t ts;
  uint32_t pid, counter;
  ASSERT_TRUE(plugin::ParseActionKeyId(actions[0].key, &ts, &pid, &counter).ok());
  EXPECT_EQ(ts, r.ts_us);
}

TEST_F(ActionList, ImapAppendToInboxRecordsInsertAndToSentRecordsSent) {
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  Append(&imap, "INBOX");
  Append(&imap, "Sent", "(\\Seen)");
  Append(&imap, "Drafts");  // not part of the virtual mailbox
  std::vector<Action> actions = Actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].rec.kind, ActionKind::kInsert);
  EXPECT_EQ(actions[1].rec.kind, ActionKind::kSent);
  EXPECT_EQ(actions[1].rec.box, "Sent");
  EXPECT_EQ(actions[1].rec.uid, 1u);
  EXPECT_EQ(actions[1].rec.uidvalidity, UidValidity(&imap, "Sent"));
  EXPECT_LT(actions[0].key, actions[1].key);
}

TEST_F(ActionList, SeenFlagChangesRecordReadAndUnread) {
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("a", "b")).ok());
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  Cmd(&imap, "SELECT INBOX");
  Cmd(&imap, "STORE 1 +FLAGS (\\Seen)");
  Cmd(&imap, "STORE 1 +FLAGS (\\Seen)");     // no change: nothing recorded
  Cmd(&imap, "STORE 1 +FLAGS (\\Flagged)");  // not \Seen: nothing recorded
  Cmd(&imap, "STORE 1 -FLAGS (\\Seen)");
  std::vector<Action> actions = Actions();
  ASSERT_EQ(actions.size(), 3u);
  EXPECT_EQ(actions[0].rec.kind, ActionKind::kInsert);
  EXPECT_EQ(actions[1].rec.kind, ActionKind::kRead);
  EXPECT_EQ(actions[2].rec.kind, ActionKind::kUnread);
  EXPECT_EQ(actions[1].rec.uid, 1u);
  EXPECT_EQ(actions[1].rec.guid, actions[0].rec.guid);
}

TEST_F(ActionList, MoveToTrashAndBackRecordsTrashAndRestoreOnly) {
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("a", "b")).ok());
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  uint32_t inbox_uv = UidValidity(&imap, "INBOX");
  uint32_t trash_uv = UidValidity(&imap, "Trash");
  Cmd(&imap, "SELECT INBOX");
  Cmd(&imap, "UID MOVE 1 Trash");
  Cmd(&imap, "SELECT Trash");
  Cmd(&imap, "UID MOVE 1 INBOX");
  std::vector<Action> actions = Actions();
  ASSERT_EQ(actions.size(), 3u);
  const ActionRecord& trash = actions[1].rec;
  EXPECT_EQ(trash.kind, ActionKind::kTrash);
  EXPECT_EQ(trash.box, "Trash");
  EXPECT_EQ(trash.uidvalidity, trash_uv);
  EXPECT_EQ(trash.uid, 1u);
  EXPECT_EQ(trash.src_box, "INBOX");
  EXPECT_EQ(trash.src_uidvalidity, inbox_uv);
  EXPECT_EQ(trash.src_uid, 1u);
  EXPECT_EQ(trash.guid, actions[0].rec.guid);
  const ActionRecord& restore = actions[2].rec;
  EXPECT_EQ(restore.kind, ActionKind::kRestore);
  EXPECT_EQ(restore.box, "INBOX");
  EXPECT_EQ(restore.uid, 2u);
  EXPECT_EQ(restore.src_box, "Trash");
  EXPECT_EQ(restore.src_uid, 1u);
}

TEST_F(ActionList, CopyThenExpungeIsAMoveToTrash) {
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("a", "b")).ok());
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  Cmd(&imap, "SELECT INBOX");
  Cmd(&imap, "UID COPY 1 Trash");
  // Still in INBOX: nothing but the insert yet.
  EXPECT_EQ(Actions().size(), 1u);
  Cmd(&imap, "UID STORE 1 +FLAGS.SILENT (\\Deleted)");
  Cmd(&imap, "EXPUNGE");
  std::vector<Action> actions = Actions();
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[1].rec.kind, ActionKind::kTrash);
  EXPECT_EQ(actions[1].rec.box, "Trash");
  EXPECT_EQ(actions[1].rec.uid, 1u);
  EXPECT_EQ(actions[1].rec.src_uid, 1u);
}

TEST_F(ActionList, ExpungeWithoutMoveIsDestroyInInboxAndTrash) {
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("a", "b")).ok());
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("c", "d")).ok());
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  Cmd(&imap, "SELECT INBOX");
  Cmd(&imap, "UID MOVE 2 Trash");
  Cmd(&imap, "UID STORE 1 +FLAGS.SILENT (\\Deleted)");
  Cmd(&imap, "EXPUNGE");
  Cmd(&imap, "SELECT Trash");
  Cmd(&imap, "STORE 1 +FLAGS.SILENT (\\Deleted)");
  Cmd(&imap, "EXPUNGE");
  std::vector<Action> actions = Actions();
  std::vector<ActionKind> kinds;
  for (auto& a : actions) kinds.push_back(a.rec.kind);
  ASSERT_EQ(kinds, (std::vector<ActionKind>{ActionKind::kInsert, ActionKind::kInsert,
                                            ActionKind::kTrash, ActionKind::kDestroy,
                                            ActionKind::kDestroy}));
  EXPECT_EQ(actions[3].rec.box, "INBOX");
  EXPECT_EQ(actions[3].rec.uid, 1u);
  EXPECT_EQ(actions[4].rec.box, "Trash");
  EXPECT_EQ(actions[4].rec.uid, 1u);
  EXPECT_EQ(actions[4].rec.guid, actions[1].rec.guid);
}

TEST_F(ActionList, RenameDeleteAndUidValidityChangeAskForResync) {
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  Cmd(&imap, "CREATE Other");
  Cmd(&imap, "RENAME Other Other2");  // not ours: nothing
  Cmd(&imap, "DELETE Other2");
  EXPECT_TRUE(Actions().empty());
  // auto = subscribe creates them on first use.
  Cmd(&imap, "SELECT Trash");
  Cmd(&imap, "SELECT Sent");
  Cmd(&imap, "UNSELECT");
  Cmd(&imap, "RENAME Trash OldTrash");
  Cmd(&imap, "DELETE Sent");
  imap.Logout();
  CommandResult r;
  ASSERT_TRUE(dovecot_.Doveadm({"mailbox", "update", "-u", "alice", "--uid-validity", "12345",
                               "INBOX"}, &r).ok());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<Action> actions = Actions();
  ASSERT_EQ(actions.size(), 3u) << dovecot_.Log();
  for (auto& a : actions) EXPECT_EQ(a.rec.kind, ActionKind::kResync);
  EXPECT_EQ(actions[0].rec.box, "Trash");
  EXPECT_EQ(actions[0].rec.reason, "rename");
  EXPECT_EQ(actions[1].rec.box, "Sent");
  EXPECT_EQ(actions[1].rec.reason, "delete");
  EXPECT_EQ(actions[2].rec.box, "INBOX");
}

TEST_F(ActionList, AgentMasterUserSessionRecordsNothing) {
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("a", "b")).ok());
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.LoginAsMaster("alice", &imap).ok());
  Append(&imap, "INBOX");
  Append(&imap, "Sent");
  Cmd(&imap, "SELECT INBOX");
  Cmd(&imap, "STORE 1 +FLAGS (\\Seen)");
  Cmd(&imap, "UID MOVE 1 Trash");
  Cmd(&imap, "SELECT Trash");
  Cmd(&imap, "STORE 1 +FLAGS.SILENT (\\Deleted)");
  Cmd(&imap, "EXPUNGE");
  imap.Logout();
  std::vector<Action> actions = Actions();
  ASSERT_EQ(actions.size(), 1u);  // only the delivery
  EXPECT_EQ(actions[0].rec.kind, ActionKind::kInsert);
}

TEST_F(ActionList, DisabledUserRecordsNothing) {
  ASSERT_TRUE(dovecot_.Deliver("bob", MakeTestMessage("a", "b")).ok());
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("bob", &imap).ok());
  Append(&imap, "INBOX");
  Cmd(&imap, "SELECT INBOX");
  Cmd(&imap, "STORE 1:* +FLAGS (\\Seen)");
  Cmd(&imap, "UID MOVE 1 Trash");
  imap.Logout();
  EXPECT_TRUE(Actions("bob").empty());
}

TEST_F(ActionList, BadValuesWrittenByTheUserNeverCrashThePlugin) {
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  const std::string big(5000, 'x');
  for (const std::string& kv : {
           std::string("/private/vendor/vendor.mobilesync/action/zzz \"garbage\""),
           std::string("/private/vendor/vendor.mobilesync/action/0000000000000000-00000000-00000000 "
                       "\"v1 kind=insert\""),
           std::string("/private/vendor/vendor.mobilesync/generation {5000+}\r\n") + big,
           std::string("/private/vendor/vendor.mobilesync/map/1-1 \"\\\\\"")}) {
    ImapResponse r;
    ASSERT_TRUE(imap.Command("SETMETADATA \"\" (" + kv + ")", &r).ok());
  }
  Cmd(&imap, "SELECT INBOX");
  Append(&imap, "INBOX");
  Cmd(&imap, "STORE 1 +FLAGS (\\Seen)");
  imap.Logout();
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("a", "b")).ok());
  std::map<std::string, std::string> entries;
  ImapTestClient check;
  ASSERT_TRUE(dovecot_.Login("alice", &check).ok());
  ASSERT_TRUE(GetMetadata(&check, "", kPrefix, &entries).ok());
  int valid = 0;
  for (const auto& e : entries) {
    ActionRecord r;
    if (plugin::ParseActionValue(e.second, &r).ok()) ++valid;
  }
  EXPECT_EQ(valid, 3);
  EXPECT_EQ(dovecot_.Log().find("Panic"), std::string::npos) << dovecot_.Log();
  EXPECT_EQ(dovecot_.Log().find("Fatal"), std::string::npos) << dovecot_.Log();
}

// Two IMAP sessions and a stream of deliveries for the same user at once:
// every change is recorded exactly once.
TEST_F(ActionList, ConcurrentSessionsAndDeliveriesLoseNothing) {
  constexpr int kDeliveries = 40;
  constexpr int kAppendsPerSession = 20;
  std::atomic<int> failures{0};
  std::thread lmtp([&] {
    for (int i = 0; i < kDeliveries; ++i) {
      if (!dovecot_.Deliver("alice", MakeTestMessage("d" + std::to_string(i), "x")).ok())
        failures++;
    }
  });
  auto session = [&](const std::string& flag_box) {
    ImapTestClient imap;
    if (!dovecot_.Login("alice", &imap).ok()) {
      failures++;
      return;
    }
    for (int i = 0; i < kAppendsPerSession; ++i) {
      ImapResponse r;
      if (!imap.Append(flag_box, "", MakeTestMessage("s", "y"), &r).ok() || !r.ok()) failures++;
    }
    imap.Logout();
  };
  std::thread s1(session, "INBOX");
  std::thread s2(session, "Sent");
  lmtp.join();
  s1.join();
  s2.join();
  ASSERT_EQ(failures.load(), 0) << dovecot_.Log();
  // Now mark everything read from two sessions at once (disjoint halves).
  ImapTestClient a, b;
  ASSERT_TRUE(dovecot_.Login("alice", &a).ok());
  ASSERT_TRUE(dovecot_.Login("alice", &b).ok());
  Cmd(&a, "SELECT INBOX");
  Cmd(&b, "SELECT INBOX");
  const int total = kDeliveries + kAppendsPerSession;
  std::thread t1([&] {
    for (int i = 1; i <= total; i += 2) {
      ImapResponse r;
      if (!a.Command("UID STORE " + std::to_string(i) + " +FLAGS.SILENT (\\Seen)", &r).ok())
        failures++;
    }
  });
  std::thread t2([&] {
    for (int i = 2; i <= total; i += 2) {
      ImapResponse r;
      if (!b.Command("UID STORE " + std::to_string(i) + " +FLAGS.SILENT (\\Seen)", &r).ok())
        failures++;
    }
  });
  t1.join();
  t2.join();
  ASSERT_EQ(failures.load(), 0);
  std::vector<Action> actions = Actions();
  std::map<ActionKind, std::set<uint32_t>> uids;
  std::set<std::string> keys;
  for (auto& act : actions) {
    EXPECT_TRUE(uids[act.rec.kind].insert(act.rec.uid).second)
        << "recorded twice: " << plugin::ActionKindName(act.rec.kind) << " " << act.rec.uid;
    keys.insert(act.key);
  }
  EXPECT_EQ(keys.size(), actions.size());
  EXPECT_EQ(uids[ActionKind::kInsert].size(), static_cast<size_t>(total));
  EXPECT_EQ(uids[ActionKind::kSent].size(), static_cast<size_t>(kAppendsPerSession));
  EXPECT_EQ(uids[ActionKind::kRead].size(), static_cast<size_t>(total));
  EXPECT_EQ(*uids[ActionKind::kInsert].rbegin(), static_cast<uint32_t>(total));
  // A message's read sorts after its insert.
  std::map<uint32_t, std::string> insert_key;
  for (auto& act : actions) {
    if (act.rec.kind == ActionKind::kInsert) insert_key[act.rec.uid] = act.key;
  }
  for (auto& act : actions) {
    if (act.rec.kind == ActionKind::kRead) {
      EXPECT_LT(insert_key[act.rec.uid], act.key);
    }
  }
}

}  // namespace
}  // namespace mobilesync::testing
