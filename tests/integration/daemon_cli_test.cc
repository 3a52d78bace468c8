// The four binaries parse their command lines and configuration files with
// clear errors, and the daemons stop cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "harness/dovecot_instance.h"

namespace mobilesync::testing {
namespace {

std::string Bin(const std::string& rel) { return BuildDir() + "/src/" + rel; }
const std::string kAgent = "sync_agent/mobilesync-agent";
const std::string kCtl = "sync_agent/mobilesyncctl";
const std::string kServer = "sync_server/mobilesync-server";
const std::string kDevice = "sync_server/mobilesync-device";

CommandResult RunBin(const std::vector<std::string>& argv) {
  CommandResult r;
  Status s = RunCommand(argv, &r, milliseconds(20000));
  EXPECT_TRUE(s.ok()) << s.ToString();
  return r;
}

class AgentConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    // A real CA certificate: the agent loads it when it starts.
    ASSERT_TRUE(ca_.Create(dir_.path(), "cli").ok());
    std::string pem;
    ASSERT_TRUE(ReadFile(ca_.ca_paths().cert, &pem).ok());
    ASSERT_TRUE(WriteFile(dir_.Sub("ca.pem"), pem, 0644).ok());
    ASSERT_TRUE(WriteFile(dir_.Sub("master.pw"), "pw\n", 0600).ok());
  }
  std::string Good() const {
    return "server = remote.example.net:4433\n"
           "tls_ca_file = " + dir_.Sub("ca.pem") + "\n"
           "master_user = mobilesync-agent\n"
           "master_password_file = " + dir_.Sub("master.pw") + "\n"
           "control_socket = " + dir_.Sub("agent.sock") + "\n"
           "state_dir = " + dir_.path() + "\n"
           "sync_interval = 5m\n";
  }
  std::string Write(const std::string& text) {
    std::string p = dir_.Sub("agent.conf");
    EXPECT_TRUE(WriteFile(p, text).ok());
    return p;
  }
  TempDir dir_;
  TestCa ca_;
};

TEST_F(AgentConfigFiles, ValidConfigPassesCheck) {
  CommandResult r = RunBin({Bin(kAgent), "-c", Write(Good()), "--check-config"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("is valid"), std::string::npos);
}

TEST_F(AgentConfigFiles, MissingFileIsNamed) {
  CommandResult r = RunBin({Bin(kAgent), "-c", dir_.Sub("nope.conf"), "-F"});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.output.find(dir_.Sub("nope.conf")), std::string::npos) << r.output;
}

TEST_F(AgentConfigFiles, BadValueNamesFileLineAndKey) {
  std::string p = Write(Good() + "max_sessions = lots\n");
  CommandResult r = RunBin({Bin(kAgent), "-c", p, "-F"});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.output.find(p + ":8"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("max_sessions"), std::string::npos) << r.output;
}

TEST_F(AgentConfigFiles, UnknownKeyAndMissingRequiredKeyAreErrors) {
  CommandResult r = RunBin({Bin(kAgent), "-c", Write(Good() + "sync_intervall = 5m\n"), "-F"});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.output.find("unknown setting 'sync_intervall'"), std::string::npos) << r.output;
  r = RunBin({Bin(kAgent), "-c", Write("tls_ca_file = /etc/hosts\n"), "-F"});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.output.find("'server'"), std::string::npos) << r.output;
}

TEST_F(AgentConfigFiles, WorldReadableSecretIsRefused) {
  ASSERT_EQ(chmod(dir_.Sub("master.pw").c_str(), 0644), 0);
  CommandResult r = RunBin({Bin(kAgent), "-c", Write(Good()), "-F"});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.output.find("master.pw"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mode 0644"), std::string::npos) << r.output;
}

TEST_F(AgentConfigFiles, BadCommandLineIsAUsageError) {
  EXPECT_EQ(RunBin({Bin(kAgent), "--bogus"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kAgent), "-c"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kAgent), "extra"}).exit_code, 64);
  CommandResult r = RunBin({Bin(kAgent), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("Usage"), std::string::npos);
}

TEST_F(AgentConfigFiles, AgentStopsCleanlyOnSigterm) {
  std::string log = dir_.Sub("agent.log");
  Process agent;
  ASSERT_TRUE(agent.Start({Bin(kAgent), "-c", Write(Good()), "-F"}, log).ok());
  std::string out;
  ASSERT_TRUE(WaitFor([&] {
    (void)ReadFile(log, &out);
    return out.find("started") != std::string::npos || !agent.running();
  })) << out;
  ASSERT_TRUE(agent.running()) << out;
  agent.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    (void)ReadFile(log, &out);
    return out.find("configuration reloaded") != std::string::npos;
  })) << out;
  agent.Signal(SIGTERM);
  int status = -1;
  ASSERT_TRUE(agent.Wait(milliseconds(10000), &status)) << "agent ignored SIGTERM";
  EXPECT_EQ(status, 0);
  (void)ReadFile(log, &out);
  EXPECT_NE(out.find("stopped"), std::string::npos) << out;
}

TEST(ServerConfig, ValidatesAndStopsOnSigterm) {
  TempDir dir;
  TestCa ca;
  PemPaths cert;
  ASSERT_TRUE(ca.Create(dir.path(), "cli").ok());
  ASSERT_TRUE(ca.Issue(CertSpec(), dir.path(), "server", &cert).ok());
  ASSERT_TRUE(WriteFile(dir.Sub("agents"), "corp cert_cn=agent.example users=*\n", 0600).ok());
  std::string good = "listen = 127.0.0.1:" + std::to_string(FreeLoopbackPort()) + "\n" +
                     "device_api_listen = 127.0.0.1:" + std::to_string(FreeLoopbackPort()) + "\n" +
                     "tls_cert_file = " + cert.cert + "\n" +
                     "tls_key_file = " + cert.key + "\n" +
                     "agents_file = " + dir.Sub("agents") + "\n" +
                     "database = " + dir.Sub("store.db") + "\n";
  ASSERT_TRUE(WriteFile(dir.Sub("bad.conf"), good + "default_window = 0\n").ok());
  CommandResult r = RunBin({Bin(kServer), "-c", dir.Sub("bad.conf"), "-F"});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.output.find("default_window"), std::string::npos) << r.output;

  ASSERT_TRUE(WriteFile(dir.Sub("server.conf"), good).ok());
  Process server;
  std::string log = dir.Sub("server.log");
  ASSERT_TRUE(server.Start({Bin(kServer), "-c", dir.Sub("server.conf"), "-F"}, log).ok());
  std::string out;
  ASSERT_TRUE(WaitFor([&] {
    (void)ReadFile(log, &out);
    return out.find("started") != std::string::npos || !server.running();
  })) << out;
  server.Signal(SIGTERM);
  int status = -1;
  ASSERT_TRUE(server.Wait(milliseconds(10000), &status));
  EXPECT_EQ(status, 0) << out;
}

TEST(CtlCommandLine, ValidatesCommandsAndExplainsAMissingAgent) {
  EXPECT_EQ(RunBin({Bin(kCtl), "frobnicate"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kCtl), "sync"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kCtl), "enable", "a*b"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kCtl), "users", "--wait"}).exit_code, 64);
  CommandResult r = RunBin({Bin(kCtl), "-s", "/nonexistent/agent.sock", "status", "alice"});
  EXPECT_EQ(r.exit_code, 69);
  EXPECT_NE(r.output.find("cannot connect to the agent at /nonexistent/agent.sock"),
            std::string::npos)
      << r.output;
}

TEST(DeviceCommandLine, ValidatesCommandsAndExplainsAMissingServer) {
  EXPECT_EQ(RunBin({Bin(kDevice), "read"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kDevice), "read", "12x"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kDevice), "compose", "--subject", "s"}).exit_code, 64);
  EXPECT_EQ(RunBin({Bin(kDevice), "--api", "nonsense", "list"}).exit_code, 64);
  std::string api = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
  CommandResult r = RunBin({Bin(kDevice), "--api", api, "list"});
  EXPECT_EQ(r.exit_code, 69);
  EXPECT_NE(r.output.find("cannot reach the device API"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mobilesync::testing
