// The agent configuration's mail submission keys (submission_host,
// sendmail_path): defaults, parsing and validation.
#include "sync_agent/agent_config.h"

#include <gtest/gtest.h>

#include "harness/temp_dir.h"

namespace mobilesync::agent {
namespace {

using testing::TempDir;
using testing::WriteFile;

class AgentConfigTest : public ::testing::Test {
 protected:
  // Loads the minimal valid configuration plus `extra` lines.
  Status Load(const std::string& extra, AgentConfig* out) {
    EXPECT_TRUE(WriteFile(dir_.Sub("ca.pem"), "ca\n", 0644).ok());
    EXPECT_TRUE(WriteFile(dir_.Sub("master.pw"), "pw\n", 0600).ok());
    std::string conf =
        "server = remote.example:4443\n"
        "tls_ca_file = " +
        dir_.Sub("ca.pem") +
        "\n"
        "master_user = mobilesync-agent\n"
        "master_password_file = " +
        dir_.Sub("master.pw") + "\n" + extra;
    EXPECT_TRUE(WriteFile(dir_.Sub("agent.conf"), conf, 0644).ok());
    return LoadAgentConfig(dir_.Sub("agent.conf"), out);
  }
  TempDir dir_;
};

TEST_F(AgentConfigTest, SubmissionDefaultsToSendmail) {
  AgentConfig c;
  Status s = Load("", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.submission_host, "");
  EXPECT_EQ(c.submission_port, 0);
  EXPECT_EQ(c.sendmail_path, "/usr/sbin/sendmail");
}

TEST_F(AgentConfigTest, SubmissionHostAndSendmailPathAreParsed) {
  AgentConfig c;
  Status s = Load("submission_host = relay.example:2525\nsendmail_path = /opt/bin/sendmail\n", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.submission_host, "relay.example");
  EXPECT_EQ(c.submission_port, 2525);
  EXPECT_EQ(c.sendmail_path, "/opt/bin/sendmail");
}

TEST_F(AgentConfigTest, BadSubmissionSettingsAreRefused) {
  AgentConfig c;
  Status s = Load("sendmail_path = sendmail\n", &c);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("sendmail_path"), std::string::npos);
  s = Load("submission_host = relay.example\n", &c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("submission_host"), std::string::npos) << s.ToString();
  s = Load("submission_host = relay.example:99999\n", &c);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace mobilesync::agent
