// mobilesync-agent with mobilesyncctl against a real Dovecot: enabling
// users, status and sync in text and JSON, the plugin's pokes (a burst is
// coalesced, an unknown user is enabled), periodic runs, persistence across
// a restart, enable --all-from-userdb through doveadm, graceful SIGTERM.
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "harness/dovecot_instance.h"

namespace mobilesync::testing {
namespace {

std::string Bin(const std::string& rel) {
  return BuildDir() + "/src/" + rel;
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

class AgentCtlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dovecot_ = new DovecotInstance();
    DovecotOptions o;
    o.users.push_back({"alice", "pw", "userdb_mobilesync_enabled=yes"});
    o.users.push_back({"bob", "pw", "userdb_mobilesync_enabled=yes"});
    o.users.push_back({"carol", "pw", "userdb_mobilesync_enabled=no"});
    o.users.push_back({"dave", "pw", ""});
    o.load_mobilesync = false;
    o.mail_debug = false;
    o.wait_for_lmtp = false;
    Status s = dovecot_->Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() {
    delete dovecot_;
    dovecot_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(dovecot_ && dovecot_->running());
    ASSERT_TRUE(MakeDirs(dir_.Sub("state")).ok());
    ASSERT_TRUE(
        WriteFile(dir_.Sub("master.pw"), dovecot_->options().master_password + "\n", 0600).ok());
    config_ = dir_.Sub("agent.conf");
    ASSERT_TRUE(WriteFile(config_, Config()).ok());
  }
  void TearDown() override {
    if (agent_.running()) agent_.Stop();
  }

  std::string Config(const std::string& sync_interval = "1h") const {
    return "server = 127.0.0.1:" + std::to_string(FreeLoopbackPort()) + "\n" +
           "server_name = localhost\n" + "tls_ca_file = " + dovecot_->ca_cert() + "\n" +
           "imap = 127.0.0.1:" + std::to_string(dovecot_->imap_port()) + "\n" +
           "master_user = " + dovecot_->options().master_user + "\n" +
           "master_password_file = " + dir_.Sub("master.pw") + "\n" +
           "control_socket = " + dir_.Sub("agent.sock") + "\n" +
           "state_dir = " + dir_.Sub("state") + "\n" + "sync_interval = " + sync_interval + "\n" +
           "coalesce_delay = 100ms\n" + "reconnect_min = 5s\n" + "retry_min = 200ms\n" +
           "max_sessions = 4\n" + "shutdown_timeout = 5s\n" +
           "doveadm_config = " + dovecot_->config_path() + "\n" + "log_level = debug\n";
  }

  void StartAgent() {
    // The log is appended to across restarts: wait for one more "started".
    size_t before = Count(Log(), "started (server");
    ASSERT_TRUE(agent_.Start({Bin("sync_agent/mobilesync-agent"), "-c", config_, "-F"}, log_).ok());
    ASSERT_TRUE(WaitFor([&] {
      return Count(Log(), "started (server") > before || !agent_.running();
    })) << Log();
    ASSERT_TRUE(agent_.running()) << Log();
  }
  void StopAgent() {
    agent_.Signal(SIGTERM);
    int status = -1;
    ASSERT_TRUE(agent_.Wait(milliseconds(15000), &status)) << "agent ignored SIGTERM";
    EXPECT_EQ(status, 0) << Log();
  }
  std::string Log() const {
    std::string out;
    (void)ReadFile(log_, &out);
    return out;
  }
  CommandResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {Bin("sync_agent/mobilesyncctl"), "-c", config_};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r;
    Status s = RunCommand(argv, &r, milliseconds(30000));
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }
  // Writes plugin lines to the control socket and closes, as the plugin does.
  void PluginSend(const std::string& lines) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::string p = dir_.Sub("agent.sock");
    memcpy(addr.sun_path, p.c_str(), p.size());
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
    ASSERT_EQ(write(fd, lines.data(), lines.size()), static_cast<ssize_t>(lines.size()));
    close(fd);
  }
  void AddActions(const std::string& user, int n) {
    ImapTestClient c;
    ASSERT_TRUE(dovecot_->LoginAsMaster(user, &c).ok());
    std::string cmd = "SETMETADATA \"\" (";
    for (int i = 0; i < n; ++i)
      cmd += std::string(i ? " " : "") + "/private/vendor/vendor.mobilesync/action/" +
             std::to_string(1000 + i) + " \"insert " + std::to_string(i) + "\"";
    ImapResponse r;
    ASSERT_TRUE(c.Command(cmd + ")", &r).ok());
    ASSERT_TRUE(r.ok()) << r.tagged;
    c.Logout();
  }

  static DovecotInstance* dovecot_;
  TempDir dir_;
  std::string config_;
  std::string log_ = dir_.Sub("agent.log");
  Process agent_;
};
DovecotInstance* AgentCtlTest::dovecot_ = nullptr;

TEST_F(AgentCtlTest, EnableStatusSyncTextAndJson) {
  StartAgent();
  CommandResult r = Ctl({"enable", "alice"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 enabled"), std::string::npos) << r.output;
  r = Ctl({"enable", "alice"});
  EXPECT_NE(r.output.find("0 enabled, 1 already enabled"), std::string::npos) << r.output;

  r = Ctl({"users"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("USER"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("alice"), std::string::npos) << r.output;
  r = Ctl({"--json", "users"});
  EXPECT_NE(r.output.find("{\"users\":[{\"user\":\"alice\",\"source\":\"ctl\""), std::string::npos)
      << r.output;

  // No remote server runs in this test: the session reads the user's
  // mailbox (3 pending actions), then fails for want of a server, and says
  // so (tests/integration/e2e_sync_test covers sessions that succeed).
  // The enable's own session must be over first: it would read (and, being
  // unreadable, delete) the entries itself.
  r = Ctl({"sync", "alice", "--wait"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  AddActions("alice", 3);
  r = Ctl({"sync", "alice", "--wait"});
  EXPECT_NE(r.exit_code, 0) << r.output << Log();
  EXPECT_NE(r.output.find("server"), std::string::npos) << r.output;

  r = Ctl({"status", "alice", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"pending_actions\":3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"result\":\"Unavailable"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"connection\":{\"state\":"), std::string::npos) << r.output;

  r = Ctl({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("connection: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("LAST SYNC"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("alice"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Unavailable"), std::string::npos) << r.output;

  r = Ctl({"status", "nobody"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("not enabled"), std::string::npos) << r.output;
  r = Ctl({"sync", "nobody"});
  EXPECT_NE(r.exit_code, 0);

  r = Ctl({"disable", "alice"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Ctl({"--json", "users"});
  EXPECT_EQ(r.output.find("alice"), std::string::npos) << r.output;
  EXPECT_NE(Log().find("user=alice: session failed: Unavailable"), std::string::npos) << Log();
  StopAgent();
}

TEST_F(AgentCtlTest, PokeBurstIsCoalescedAndEnablesTheUser) {
  StartAgent();
  std::string burst;
  for (int i = 0; i < 100; ++i) burst += "poke bob\n";
  PluginSend(burst);
  ASSERT_TRUE(WaitFor([&] { return Log().find("user=bob: session failed") != std::string::npos; }))
      << Log();
  // Let any follow-up run (pokes that arrived during the session) finish.
  ASSERT_TRUE(WaitFor([&] {
    CommandResult r = Ctl({"--json", "status", "bob"});
    return r.output.find("\"running\":false") != std::string::npos;
  }));
  size_t sessions = Count(Log(), "user=bob: session started");
  EXPECT_GE(sessions, 1u);
  EXPECT_LE(sessions, 2u) << Log();
  CommandResult r = Ctl({"--json", "users"});
  EXPECT_NE(r.output.find("{\"user\":\"bob\",\"source\":\"poke\""), std::string::npos) << r.output;
  // A trigger line, several lines on one connection, a last line without
  // a newline, and garbage (ignored).
  PluginSend("sync bob\nfrobnicate x\npoke bob");
  ASSERT_TRUE(WaitFor([&] {
    return Count(Log(), "user=bob: session started (trigger message)") == 1;
  })) << Log();
  StopAgent();
}

TEST_F(AgentCtlTest, PeriodicRunsAndRestartKeepsUsers) {
  // No remote server here: every session fails and is retried after
  // retry_min, 200 ms here (the periodic interval applies after a success).
  ASSERT_TRUE(WriteFile(config_, Config("1s")).ok());
  StartAgent();
  ASSERT_EQ(Ctl({"enable", "alice"}).exit_code, 0);
  ASSERT_EQ(Ctl({"enable", "bob"}).exit_code, 0);
  // Without any request, each user runs again and again.
  ASSERT_TRUE(WaitFor([&] {
    std::string l = Log();
    return Count(l, "user=alice: session started (") >= 2 &&
           Count(l, "user=bob: session started (") >= 2;
  })) << Log();
  // Sessions of a user reuse its pooled IMAP connection: one LOGIN each.
  EXPECT_EQ(Count(Log(), "user=alice: IMAP > m1 LOGIN alice*mobilesync-agent <password>"), 1u);
  EXPECT_EQ(Log().find("master-secret-pw"), std::string::npos) << "a secret reached the log";
  StopAgent();
  StartAgent();
  CommandResult r = Ctl({"users"});
  EXPECT_NE(r.output.find("alice"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bob"), std::string::npos) << r.output;
  EXPECT_NE(Log().find("2 enabled users loaded"), std::string::npos) << Log();
  StopAgent();
  EXPECT_NE(Log().find("stopped"), std::string::npos);
}

TEST_F(AgentCtlTest, EnableAllFromUserdb) {
  StartAgent();
  CommandResult r = Ctl({"enable", "--all-from-userdb"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("4 users in the userdb, 2 with mobilesync_enabled=yes, 2 newly enabled"),
            std::string::npos)
      << r.output;
  r = Ctl({"--json", "users"});
  EXPECT_NE(r.output.find("{\"user\":\"alice\",\"source\":\"userdb\""), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("\"bob\""), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("carol"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("dave"), std::string::npos) << r.output;
  StopAgent();
}

TEST_F(AgentCtlTest, FailedSessionIsReportedAndRetried) {
  // A wrong master password: every session fails, and is retried.
  ASSERT_TRUE(WriteFile(dir_.Sub("master.pw"), "wrong\n", 0600).ok());
  StartAgent();
  ASSERT_EQ(Ctl({"enable", "alice"}).exit_code, 0);
  CommandResult r = Ctl({"sync", "alice", "--wait"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("IMAP NO"), std::string::npos) << r.output;
  ASSERT_TRUE(WaitFor([&] { return Count(Log(), "user=alice: session started (retry)") >= 1; }))
      << Log();
  r = Ctl({"status", "alice"});
  EXPECT_NE(r.output.find("failed"), std::string::npos) << r.output;
  StopAgent();
}

TEST_F(AgentCtlTest, BadConfigurationNamesTheLine) {
  ASSERT_TRUE(WriteFile(config_, Config() + "imap_idle_keep = forever\n").ok());
  CommandResult r;
  ASSERT_TRUE(RunCommand({Bin("sync_agent/mobilesync-agent"), "-c", config_, "-F"}, &r).ok());
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.output.find(config_ + ":17"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("imap_idle_keep"), std::string::npos) << r.output;
}

TEST_F(AgentCtlTest, SocketRefusesOtherUsers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  StartAgent();
  // The socket is 0660: let "nobody" reach it through the directory, then
  // check that the agent itself refuses the peer.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(dir_.Sub("agent.sock").c_str(), 0666), 0);
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::string p = dir_.Sub("agent.sock");
    memcpy(addr.sun_path, p.c_str(), p.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(3);
    const char req[] = "hello 1\nusers\n";
    // The agent may already have closed us: no SIGPIPE, an error is fine.
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) < 0) _exit(0);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    _exit(n > 0 ? 1 : 0);  // any reply means the agent served us
  }
  int status = -1;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ASSERT_TRUE(WaitFor([&] {
    return Log().find("control socket: refused uid 65534") != std::string::npos;
  })) << Log();
  StopAgent();
}

// As `uid`/`gid` (a forked child): "hello 1" + "users" on the socket.
// 1: the agent answered +OK; 0: it closed without a word; 2, 3: set-up.
int ControlAs(const std::string& socket_path, uid_t uid, gid_t gid) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(2);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(3);
    const char req[] = "hello 1\nusers\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) < 0) _exit(0);
    char buf[64] = {};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    _exit(n > 0 && strncmp(buf, "+OK", 3) == 0 ? 1 : 0);
  }
  int status = -1;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// control_group: a peer whose group it is gets served; a peer of another
// group (neither root nor the agent's user) is refused by the agent itself
// (the socket is opened to everyone for the test).
TEST_F(AgentCtlTest, SocketServesControlGroupAndRefusesOtherGroups) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  group* g = getgrgid(65534);
  if (g == nullptr) GTEST_SKIP() << "no group 65534";
  const std::string group_name = g->gr_name;
  ASSERT_TRUE(WriteFile(config_, Config() + "control_group = " + group_name + "\n").ok());
  StartAgent();
  struct stat st;
  ASSERT_EQ(stat(dir_.Sub("agent.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(dir_.Sub("agent.sock").c_str(), 0666), 0);
  // uid 1 (daemon) in group 65534: served.
  EXPECT_EQ(ControlAs(dir_.Sub("agent.sock"), 1, 65534), 1) << Log();
  // uid 1 in group 1: refused, and logged with the reason.
  EXPECT_EQ(ControlAs(dir_.Sub("agent.sock"), 1, 1), 0) << Log();
  ASSERT_TRUE(WaitFor([&] {
    return Log().find("control socket: refused uid 1 ") != std::string::npos;
  })) << Log();
  EXPECT_NE(Log().find("not a member of control_group"), std::string::npos) << Log();
  StopAgent();
}

TEST_F(AgentCtlTest, SecondAgentDoesNotStealTheSocket) {
  StartAgent();
  CommandResult r;
  ASSERT_TRUE(RunCommand({Bin("sync_agent/mobilesync-agent"), "-c", config_, "-F"}, &r).ok());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("another agent is listening"), std::string::npos) << r.output;
  EXPECT_EQ(Ctl({"users"}).exit_code, 0);
  StopAgent();
}

}  // namespace
}  // namespace mobilesync::testing
