// Trigger messages over real LMTP: a valid one is swallowed and asks the
// agent for a sync; anything else (stale, replayed, bad MAC, another user,
// malformed, over the rate limit) is delivered as a normal message.
#include <gtest/gtest.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <ctime>

#include "harness/dovecot_instance.h"
#include "harness/fake_agent_socket.h"
#include "plugin/trigger_header.h"

namespace mobilesync::testing {
namespace {

const std::string kSecret = "trigger-test-secret-0123456789abcdef-0123456789";

class Trigger : public ::testing::Test {
 protected:
  void Start(int rate_limit = 10) {
    socket_path_ = dir_.path() + "/agent.sock";
    secret_path_ = dir_.path() + "/trigger.secret";
    // Root-owned, readable by the mail processes' group only: the
    // deployment the docs recommend (0640 root:<mail group>).
    ASSERT_TRUE(WriteFile(secret_path_, kSecret + "\n", 0640).ok());
    gid_t gid = getegid();
    if (geteuid() == 0) {
      struct passwd* pw = getpwnam("mail");
      ASSERT_NE(pw, nullptr);
      gid = pw->pw_gid;
    }
    ASSERT_EQ(chown(secret_path_.c_str(), geteuid(), gid), 0);
    chmod(dir_.path().c_str(), 0755);
    DovecotOptions o;
    o.users = {{"alice", "alice-pw", "userdb_mobilesync_enabled=yes"},
               {"bob", "bob-pw", "userdb_mobilesync_enabled=yes"}};
    o.plugin_settings = "mobilesync_agent_socket = " + socket_path_ + "\n" +
                        "mobilesync_trigger_secret_file = " + secret_path_ + "\n" +
                        "mobilesync_trigger_rate_limit = " + std::to_string(rate_limit) + "\n";
    Status s = dovecot_.Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(agent_.Start(socket_path_, FakeAgentSocket::Mode::kRead).ok());
  }

  static std::string Nonce(int i) {
    char buf[33];
    snprintf(buf, sizeof buf, "%032x", 0xabc000 + i);
    return buf;
  }

  static std::string TriggerMessage(const std::string& header_value) {
    return "From: <sync@mobile.example>\r\nTo: <alice@example.test>\r\n"
           "Subject: sync\r\nX-Mobilesync-Trigger: " + header_value +
           "\r\nMessage-ID: <t" + std::to_string(rand()) + "@mobile.example>\r\n\r\nsync\r\n";
  }

  std::string Valid(int nonce, const std::string& user = "alice", long skew = 0) {
    return plugin::FormatTriggerHeader(kSecret, user, static_cast<uint64_t>(time(nullptr) + skew),
                                       Nonce(nonce));
  }

  int Messages(const std::string& user = "alice") {
    ImapTestClient imap;
    EXPECT_TRUE(dovecot_.Login(user, &imap).ok());
    ImapResponse r;
    EXPECT_TRUE(imap.Command("STATUS INBOX (MESSAGES)", &r).ok());
    std::string t = r.Text();
    size_t p = t.find("MESSAGES ");
    return p == std::string::npos ? -1 : std::stoi(t.substr(p + 9));
  }

  int SyncLines(const std::string& user = "alice") {
    int n = 0;
    for (const auto& l : agent_.Lines()) n += l == "sync " + user;
    return n;
  }

  TempDir dir_;
  std::string socket_path_, secret_path_;
  DovecotInstance dovecot_;
  FakeAgentSocket agent_;
};

TEST_F(Trigger, ValidTriggerIsSwallowedAndRequestsSync) {
  Start();
  ASSERT_TRUE(dovecot_.Deliver("alice", TriggerMessage(Valid(1))).ok());
  ASSERT_TRUE(WaitFor([&] { return SyncLines() == 1; })) << dovecot_.Log();
  EXPECT_EQ(Messages(), 0);
  EXPECT_TRUE(dovecot_.WaitForLog("mobilesync: trigger accepted"));
  EXPECT_EQ(dovecot_.Log().find(kSecret), std::string::npos) << "secret in the log";
}

TEST_F(Trigger, InvalidTriggersAreDeliveredAsNormalMail) {
  Start();
  std::string good = Valid(2);
  std::string bad_mac = good;
  bad_mac[bad_mac.size() - 1] = bad_mac.back() == '0' ? '1' : '0';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"stale", Valid(3, "alice", -3600)},
      {"future", Valid(4, "alice", +3600)},
      {"bad mac", bad_mac},
      {"other user", Valid(5, "bob")},
      {"malformed", "v1; user=alice; ts=12; nonce=zz; mac=00"},
      {"not v1", "v2; user=alice"},
  };
  int expected = 0;
  for (const auto& c : cases) {
    ASSERT_TRUE(dovecot_.Deliver("alice", TriggerMessage(c.second)).ok()) << c.first;
    ++expected;
    EXPECT_EQ(Messages(), expected) << c.first << " was swallowed\n" << dovecot_.Log();
  }
  // Replay: the first copy is accepted, the second delivered.
  ASSERT_TRUE(dovecot_.Deliver("alice", TriggerMessage(good)).ok());
  EXPECT_EQ(Messages(), expected);
  ASSERT_TRUE(dovecot_.Deliver("alice", TriggerMessage(good)).ok());
  EXPECT_EQ(Messages(), expected + 1);
  EXPECT_TRUE(dovecot_.WaitForLog("replayed"));
  EXPECT_TRUE(dovecot_.WaitForLog("trigger rejected (bad mac)"));
  EXPECT_TRUE(dovecot_.WaitForLog("trigger rejected (stale)"));
  EXPECT_TRUE(dovecot_.WaitForLog("trigger rejected (for another user)"));
  EXPECT_TRUE(dovecot_.WaitForLog("malformed trigger"));
  ASSERT_TRUE(WaitFor([&] { return SyncLines() == 1; }));
}

TEST_F(Trigger, TriggersBeyondTheRateLimitAreDeliveredAsNormalMail) {
  Start(/*rate_limit=*/2);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(dovecot_.Deliver("alice", TriggerMessage(Valid(10 + i))).ok());
  }
  EXPECT_EQ(Messages(), 1);
  EXPECT_TRUE(dovecot_.WaitForLog("rate limit"));
  ASSERT_TRUE(WaitFor([&] { return SyncLines() == 2; }));
}

TEST_F(Trigger, UnsafeSecretFileDisablesTriggersButNotDelivery) {
  Start();
  chmod(secret_path_.c_str(), 0644);
  ASSERT_TRUE(dovecot_.Deliver("alice", TriggerMessage(Valid(20))).ok());
  EXPECT_EQ(Messages(), 1);
  EXPECT_TRUE(dovecot_.WaitForLog("group-write or other bits"));
  EXPECT_EQ(dovecot_.Log().find(kSecret), std::string::npos);
}

}  // namespace
}  // namespace mobilesync::testing
