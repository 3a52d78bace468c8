// The plugin pokes the agent over its UNIX socket, and a missing, hung or
// stuck agent never slows down or fails delivery: the action attributes
// are the durable record, the poke only a hint.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "harness/dovecot_instance.h"
#include "harness/fake_agent_socket.h"
#include "harness/metadata.h"

namespace mobilesync::testing {
namespace {

constexpr int kMessages = 200;

class AgentPoke : public ::testing::Test {
 protected:
  void Start() {
    socket_path_ = sock_dir_.path() + "/agent.sock";
    DovecotOptions o;
    o.users = {{"alice", "alice-pw", "userdb_mobilesync_enabled=yes"}};
    o.plugin_settings = "mobilesync_agent_socket = " + socket_path_ + "\n";
    // Debug logging of 200 deliveries would dominate the run time.
    o.mail_debug = false;
    Status s = dovecot_.Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Delivers kMessages over one LMTP connection each; returns the seconds
  // it took.
  double DeliverMany() {
    auto start = Clock::now();
    for (int i = 0; i < kMessages; ++i) {
      Status s = dovecot_.Deliver("alice", MakeTestMessage("m" + std::to_string(i), "body"));
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (!s.ok()) break;
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  size_t ActionCount() {
    ImapTestClient imap;
    EXPECT_TRUE(dovecot_.Login("alice", &imap).ok());
    std::map<std::string, std::string> entries;
    EXPECT_TRUE(GetMetadata(&imap, "", "/private/vendor/vendor.mobilesync/action", &entries).ok());
    return entries.size();
  }

  int CountInLog(const std::string& needle) {
    std::string log = dovecot_.Log();
    int n = 0;
    for (size_t p = log.find(needle); p != std::string::npos; p = log.find(needle, p + 1)) ++n;
    return n;
  }

  TempDir sock_dir_;
  std::string socket_path_;
  DovecotInstance dovecot_;
};

// Generous: 200 deliveries take a few seconds even with sanitizers on a
// busy machine; a blocked poke would stall each one for good.
constexpr double kDeadlineSeconds = 120;

TEST_F(AgentPoke, AbsentAgentNeitherFailsNorSlowsDelivery) {
  Start();
  double secs = DeliverMany();
  EXPECT_LT(secs, kDeadlineSeconds);
  EXPECT_EQ(ActionCount(), static_cast<size_t>(kMessages));
  // One warning per process at most (LMTP reuses its processes).
  int warnings = CountInLog("mobilesync: agent not reachable");
  EXPECT_GE(warnings, 1);
  EXPECT_LE(warnings, 10) << dovecot_.Log();
}

TEST_F(AgentPoke, HungAgentThatNeverReadsDoesNotBlockDelivery) {
  FakeAgentSocket agent;
  Start();
  ASSERT_TRUE(agent.Start(socket_path_, FakeAgentSocket::Mode::kAcceptNeverRead).ok());
  double secs = DeliverMany();
  EXPECT_LT(secs, kDeadlineSeconds);
  EXPECT_EQ(ActionCount(), static_cast<size_t>(kMessages));
  EXPECT_GT(agent.connections(), 0);
}

TEST_F(AgentPoke, StuckAgentThatNeverAcceptsDoesNotBlockDelivery) {
  FakeAgentSocket agent;
  Start();
  ASSERT_TRUE(agent.Start(socket_path_, FakeAgentSocket::Mode::kNeverAccept).ok());
  double secs = DeliverMany();
  EXPECT_LT(secs, kDeadlineSeconds);
  EXPECT_EQ(ActionCount(), static_cast<size_t>(kMessages));
}

TEST_F(AgentPoke, ListeningAgentReceivesBatchedPokes) {
  FakeAgentSocket agent;
  Start();
  ASSERT_TRUE(agent.Start(socket_path_, FakeAgentSocket::Mode::kRead).ok());
  ASSERT_TRUE(dovecot_.Deliver("alice", MakeTestMessage("a", "b")).ok());
  ASSERT_TRUE(WaitFor([&] { return agent.Lines().size() >= 1; })) << dovecot_.Log();
  EXPECT_EQ(agent.Lines()[0], "poke alice");
  // The agent's own appends (master user) record nothing and poke nothing.
  ImapTestClient agent_imap;
  ASSERT_TRUE(dovecot_.LoginAsMaster("alice", &agent_imap).ok());
  for (int i = 0; i < 50; ++i) {
    ImapResponse r;
    ASSERT_TRUE(agent_imap.Append("INBOX", "", MakeTestMessage("x", "y"), &r).ok());
  }
  agent_imap.Logout();
  // Fifty-one changes in one burst make one poke, not fifty-one.
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  ImapResponse r;
  ASSERT_TRUE(imap.Command("SELECT INBOX", &r).ok());
  ASSERT_TRUE(imap.Command("STORE 1:* +FLAGS.SILENT (\\Seen)", &r).ok());
  ASSERT_TRUE(r.ok()) << r.tagged;
  ASSERT_TRUE(WaitFor([&] { return agent.Lines().size() >= 2; })) << dovecot_.Log();
  imap.Logout();
  EXPECT_EQ(ActionCount(), 1u + 51u);
  // Give a wrongly unbatched plugin time to send more.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<std::string> lines = agent.Lines();
  EXPECT_EQ(lines, (std::vector<std::string>{"poke alice", "poke alice"}));
}

}  // namespace
}  // namespace mobilesync::testing
