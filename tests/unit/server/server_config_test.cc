// LoadServerConfig: values that end up in SMTP must be plain.
#include "sync_server/server_config.h"

#include <gtest/gtest.h>

#include "harness/temp_dir.h"

namespace mobilesync::server {
namespace {

using testing::TempDir;
using testing::WriteFile;

class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFile(dir_.Sub("cert.pem"), "cert\n").ok());
    ASSERT_TRUE(WriteFile(dir_.Sub("key.pem"), "key\n", 0600).ok());
    ASSERT_TRUE(
        WriteFile(dir_.Sub("agents"), "a token_sha256=" + std::string(64, 'a') + " users=*\n", 0600)
            .ok());
  }
  Status Load(const std::string& extra, ServerConfig* c) {
    const std::string text = "tls_cert_file = " + dir_.Sub("cert.pem") + "\n" +
                             "tls_key_file = " + dir_.Sub("key.pem") + "\n" +
                             "agents_file = " + dir_.Sub("agents") + "\n" + extra;
    Status s = WriteFile(dir_.Sub("server.conf"), text);
    if (!s.ok()) return s;
    return LoadServerConfig(dir_.Sub("server.conf"), c);
  }
  TempDir dir_;
};

TEST_F(ServerConfigTest, DefaultTriggerSenderLoads) {
  ServerConfig c;
  ASSERT_TRUE(Load("", &c).ok());
  EXPECT_EQ(c.trigger_from, "mobilesync-server@localhost");
  ASSERT_TRUE(Load("trigger_from = mobile@example.org\n", &c).ok());
  EXPECT_EQ(c.trigger_from, "mobile@example.org");
}

// Found by tests/fuzz/server_config_fuzzer.cc: trigger_from went unchecked
// into MAIL FROM:<...> and the From: header of every trigger e-mail.
TEST_F(ServerConfigTest, TriggerSenderThatIsNotAPlainAddressIsRefused) {
  for (const std::string bad :
       {"a@b.example\rRCPT TO:<x@evil.example>", "a@b.example> SIZE=1", "a b@c.example",
        "Name <a@b.example>", "no-at-sign", "a@b.ex\xc3\xa9mple"}) {
    ServerConfig c;
    Status s = Load("trigger_from = " + bad + "\n", &c);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.ToString().find("trigger_from"), std::string::npos) << s.ToString();
  }
}

}  // namespace
}  // namespace mobilesync::server
