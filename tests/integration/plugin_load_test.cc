// The plugin modules load into a real Dovecot (Debian's binaries) and behave
// per user: a context and one debug line for enabled users, nothing at all
// for the others; a module built for another ABI is refused.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "harness/dovecot_instance.h"

namespace mobilesync::testing {
namespace {

// Lines of the Dovecot log that belong to `user`'s processes.
std::vector<std::string> UserLines(const std::string& log, const std::string& user) {
  std::vector<std::string> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("(" + user + ")") != std::string::npos) out.push_back(line);
  }
  return out;
}

DovecotOptions TwoUsers() {
  DovecotOptions o;
  o.users = {{"alice", "alice-pw", "userdb_mobilesync_enabled=yes"},
             {"bob", "bob-pw", ""},
             {"carol", "carol-pw", "userdb_mobilesync_enabled=perhaps"}};
  return o;
}

void LoginSelectLogout(DovecotInstance* d, const std::string& user) {
  ImapTestClient imap;
  Status s = d->Login(user, &imap);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << d->Log();
  ImapResponse r;
  ASSERT_TRUE(imap.Command("SELECT INBOX", &r).ok());
  EXPECT_TRUE(r.ok()) << r.tagged;
  imap.Logout();
}

class PluginLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = dovecot_.Start(TwoUsers());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  DovecotInstance dovecot_;
};

TEST_F(PluginLoad, EnabledUserGetsContextAndOneDebugLine) {
  LoginSelectLogout(&dovecot_, "alice");
  ASSERT_TRUE(dovecot_.WaitForLog("mobilesync: enabled for user alice")) << dovecot_.Log();
  const std::string log = dovecot_.Log();
  EXPECT_NE(log.find("lib20_mobilesync_plugin.so"), std::string::npos)
      << "Dovecot should log loading our module with mail_debug\n" << log;
  int lines = 0;
  for (const auto& l : UserLines(log, "alice")) {
    if (l.find("mobilesync: enabled") != std::string::npos) ++lines;
  }
  EXPECT_EQ(lines, 1);
}

TEST_F(PluginLoad, DisabledUserLeavesNoTrace) {
  LoginSelectLogout(&dovecot_, "bob");
  // Wait until bob's session has surely logged its end, then look.
  ASSERT_TRUE(dovecot_.WaitForLog("imap(bob)")) << dovecot_.Log();
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& l : UserLines(dovecot_.Log(), "bob"))
      if (l.find("Logged out") != std::string::npos || l.find("Disconnected") != std::string::npos)
        return true;
    return false;
  })) << dovecot_.Log();
  for (const auto& l : UserLines(dovecot_.Log(), "bob")) {
    EXPECT_EQ(l.find("mobilesync:"), std::string::npos) << l;
  }
}

TEST_F(PluginLoad, BadPerUserValueDisablesOnlyThatUserWithAnError) {
  LoginSelectLogout(&dovecot_, "carol");
  ASSERT_TRUE(dovecot_.WaitForLog("mobilesync: disabled for this user")) << dovecot_.Log();
  EXPECT_NE(dovecot_.Log().find("perhaps"), std::string::npos);
  LoginSelectLogout(&dovecot_, "alice");
  EXPECT_TRUE(dovecot_.WaitForLog("mobilesync: enabled for user alice"));
}

TEST_F(PluginLoad, LmtpDeliveryLoadsTheDeliveryModuleAndStoresMail) {
  Status s = dovecot_.Deliver("alice", MakeTestMessage("hello", "first message"));
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << dovecot_.Log();
  // LMTP loads its modules before logging is set up: look at its mappings.
  std::vector<pid_t> lmtp = ProcessesNamed(dovecot_.master_pid(), "lmtp");
  ASSERT_FALSE(lmtp.empty());
  EXPECT_TRUE(ProcessMaps(lmtp[0], "lib95_mobilesync_lda_plugin.so"));
  EXPECT_TRUE(ProcessMaps(lmtp[0], "lib20_mobilesync_plugin.so"));
  ImapTestClient imap;
  ASSERT_TRUE(dovecot_.Login("alice", &imap).ok());
  ImapResponse r;
  ASSERT_TRUE(imap.Command("STATUS INBOX (MESSAGES)", &r).ok());
  EXPECT_NE(r.Text().find("MESSAGES 1"), std::string::npos) << r.Text();
  // The delivery module stays out of imap (binary dependency "lda lmtp").
  std::vector<pid_t> imap_procs = ProcessesNamed(dovecot_.master_pid(), "imap");
  ASSERT_FALSE(imap_procs.empty());
  for (pid_t pid : imap_procs) {
    EXPECT_TRUE(ProcessMaps(pid, "lib20_mobilesync_plugin.so"));
    EXPECT_FALSE(ProcessMaps(pid, "lib95_mobilesync_lda_plugin.so"));
  }
}

TEST_F(PluginLoad, AgentMasterUserCanLogInAsTheUser) {
  ImapTestClient imap;
  Status s = dovecot_.LoginAsMaster("alice", &imap);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << dovecot_.Log();
  ImapResponse r;
  ASSERT_TRUE(imap.Command("GETMETADATA \"\" /private/comment", &r).ok());
  EXPECT_TRUE(r.ok()) << "METADATA must be enabled: " << r.tagged;
}

TEST_F(PluginLoad, StopLeavesNoProcessBehind) {
  LoginSelectLogout(&dovecot_, "alice");
  pid_t pgid = dovecot_.master_pid();
  EXPECT_EQ(dovecot_.Stop(), 0) << "processes outlived the Dovecot master";
  EXPECT_TRUE(ProcessesInGroup(pgid).empty());
}

TEST(PluginAbi, ModuleBuiltForAnotherAbiIsRefused) {
  DovecotOptions o = TwoUsers();
  o.plugin_dir = BuildDir() + "/tests/integration/wrong_abi/.libs";
  o.wait_for_lmtp = false;
  DovecotInstance dovecot;
  ASSERT_TRUE(dovecot.Start(o).ok());
  ImapTestClient imap;
  Status s = dovecot.Login("alice", &imap);
  if (s.ok()) {
    // Login may be accepted before the mail process fails to load modules;
    // the first command then fails.
    ImapResponse r;
    Status c = imap.Command("SELECT INBOX", &r);
    EXPECT_FALSE(c.ok() && r.ok()) << "a wrong-ABI module was loaded";
  }
  ASSERT_TRUE(dovecot.WaitForLog("different ABI")) << dovecot.Log();
  EXPECT_EQ(dovecot.Log().find("mobilesync: enabled"), std::string::npos);
}

std::set<std::string> ExportedSymbols(const std::string& so) {
  CommandResult r;
  EXPECT_TRUE(RunCommand({"nm", "-D", "--defined-only", so}, &r).ok());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::set<std::string> names;
  std::istringstream in(r.output);
  std::string addr, type, name;
  while (in >> addr >> type >> name) names.insert(name);
  return names;
}

TEST(PluginAbi, OnlyEntryPointsAreExported) {
  EXPECT_EQ(ExportedSymbols(BuiltPluginDir() + "/lib20_mobilesync_plugin.so"),
            (std::set<std::string>{"mobilesync_plugin_deinit", "mobilesync_plugin_dependencies",
                                   "mobilesync_plugin_init", "mobilesync_plugin_version",
                                   "mobilesync_user_request_sync",
                                   "mobilesync_user_enabled"}));
  EXPECT_EQ(ExportedSymbols(BuiltPluginDir() + "/lib95_mobilesync_lda_plugin.so"),
            (std::set<std::string>{
                "mobilesync_lda_plugin_binary_dependency", "mobilesync_lda_plugin_deinit",
                "mobilesync_lda_plugin_dependencies", "mobilesync_lda_plugin_init",
                "mobilesync_lda_plugin_version"}));
}

TEST(PluginAbi, VersionSymbolMatchesInstalledDovecot) {
  // The module's version string must equal the ABI of the Dovecot it runs in
  // (what Dovecot compares at load time).
  std::string abi;
  ASSERT_TRUE(ReadFile("/usr/share/dovecot/dovecot-abi", &abi).ok());
  while (!abi.empty() && (abi.back() == '\n' || abi.back() == ' ')) abi.pop_back();
  CommandResult r;
  ASSERT_TRUE(RunCommand({"strings", BuiltPluginDir() + "/lib20_mobilesync_plugin.so"}, &r).ok());
  // DOVECOT_ABI_VERSION is e.g. "2.3.ABIv19(2.3.19.1)"; the package says "2.3.abiv19".
  std::string major = abi.substr(0, abi.find(".abiv"));
  std::string num = abi.substr(abi.find(".abiv") + 5);
  EXPECT_NE(r.output.find(major + ".ABIv" + num + "("), std::string::npos)
      << "expected ABI " << abi;
}

}  // namespace
}  // namespace mobilesync::testing
