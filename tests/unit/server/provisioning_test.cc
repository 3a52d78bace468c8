// Provisioning files, the trigger header, and device request parsing.
#include <gtest/gtest.h>

#include "plugin/trigger_header.h"
#include "sync_server/crypto_util.h"
#include "sync_server/device_request.h"
#include "sync_server/provisioning.h"
#include "common/smtp_client.h"
#include "sync_server/trigger.h"

namespace mobilesync::server {
namespace {

const std::string kHash = Sha256Hex("tok");

TEST(AgentDirectory, ParsesAndAuthenticatesByTokenCertOrBoth) {
  AgentDirectory d;
  std::string text = "# agents\n\n"
                     "both  cert_cn=a.example token_sha256=" + kHash + " users=alice\n"
                     "tok   token_sha256=" + Sha256Hex("other") + " users=*@example.org,bob\n"
                     "cert  cert_cn=c.example users=*\n";
  ASSERT_TRUE(AgentDirectory::Parse(text, "agents", &d).ok());
  ASSERT_EQ(d.agents().size(), 3u);
  EXPECT_EQ(d.Authenticate({"a.example"}, "tok")->name, "both");
  EXPECT_EQ(d.Authenticate({}, "other")->name, "tok");
  EXPECT_EQ(d.Authenticate({"c.example"}, "")->name, "cert");
  EXPECT_EQ(d.Authenticate({}, "tok"), nullptr);  // the token alone is not enough for "both"
  EXPECT_EQ(d.Authenticate({"x.example"}, "nope"), nullptr);
  const AgentEntry* t = d.Authenticate({}, "other");
  EXPECT_TRUE(t->Allows("carol@example.org"));
  EXPECT_TRUE(t->Allows("bob"));
  EXPECT_FALSE(t->Allows("carol@example.com"));
  EXPECT_FALSE(t->Allows("alice"));
}

TEST(AgentDirectory, RejectsBadLinesNamingTheLine) {
  AgentDirectory d;
  Status s = AgentDirectory::Parse("a users=x\n", "f", &d);
  EXPECT_NE(s.message().find("f:1"), std::string::npos) << s.ToString();
  s = AgentDirectory::Parse("a token_sha256=" + kHash + "\n", "f", &d);
  EXPECT_NE(s.message().find("users="), std::string::npos) << s.ToString();
  s = AgentDirectory::Parse("a token_sha256=ABC users=x\n", "f", &d);
  EXPECT_FALSE(s.ok());
  s = AgentDirectory::Parse("a cert_cn=x users=x\n\na cert_cn=y users=y\n", "f", &d);
  EXPECT_NE(s.message().find("f:3"), std::string::npos) << s.ToString();
  s = AgentDirectory::Parse("a cert_cn=x users=x colour=blue\n", "f", &d);
  EXPECT_NE(s.message().find("colour"), std::string::npos) << s.ToString();
}

TEST(DeviceDirectory, ParsesTokensAddressesAndWindows) {
  DeviceDirectory d;
  std::string text = "alice token_sha256=" + kHash + " address=alice@example.org window=6\n" +
                     "alice token_sha256=" + Sha256Hex("second") + " address=alice@example.org window=6\n" +
                     "bob@example.org token_sha256=" + Sha256Hex("b") + "\n";
  ASSERT_TRUE(DeviceDirectory::Parse(text, "devices", &d).ok());
  EXPECT_EQ(d.Authenticate("tok")->user, "alice");
  EXPECT_EQ(d.Authenticate("second")->user, "alice");
  EXPECT_EQ(d.Authenticate("b")->address, "bob@example.org");
  EXPECT_EQ(d.Authenticate("x"), nullptr);
  EXPECT_EQ(d.Authenticate(""), nullptr);
  EXPECT_EQ(d.Find("alice")->window, 6u);
  EXPECT_FALSE(DeviceDirectory::Parse("alice token_sha256=" + kHash + "\nbob token_sha256=" + kHash + "\n",
                                      "d", &d).ok());  // same token twice
  EXPECT_FALSE(DeviceDirectory::Parse("alice window=0 token_sha256=" + kHash + "\n", "d", &d).ok());
  EXPECT_FALSE(DeviceDirectory::Parse("alice address=<x@y> token_sha256=" + kHash + "\n", "d", &d).ok());
}

TEST(Trigger, HeaderHasTheAgreedFormatAndMac) {
  std::string secret(32, 's');
  std::string nonce(32, 'a');
  std::string v = TriggerHeaderValue(secret, "alice", 1700000000, nonce);
  EXPECT_EQ(v, "v1; user=alice; ts=1700000000; nonce=" + nonce +
                   "; mac=" + HmacSha256Hex(secret, "v1\nalice\n1700000000\n" + nonce));
  // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // What the plugin verifies at delivery accepts what we send.
  plugin::TriggerHeader h;
  ASSERT_TRUE(plugin::ParseTriggerHeader(v, &h).ok());
  EXPECT_EQ(plugin::VerifyTrigger(h, secret, "alice", 1700000010, 300), plugin::TriggerVerdict::kValid);
  EXPECT_EQ(plugin::FormatTriggerHeader(secret, "alice", 1700000000, nonce), v);
  std::string m;
  EXPECT_FALSE(BuildTriggerMessage("short", "alice", "f@x", "a@x", 1, &m).ok());
  ASSERT_TRUE(BuildTriggerMessage(secret, "alice", "f@x", "a@x", 1, &m).ok());
  EXPECT_NE(m.find("\r\nX-Mobilesync-Trigger: v1; user=alice; ts=1; nonce="), std::string::npos);
}

TEST(Smtp, DataBlockStuffsDotsAndEndsWithADot) {
  EXPECT_EQ(SmtpDataBlock("a\n.b\r\n..c"), "a\r\n..b\r\n...c\r\n.\r\n");
  EXPECT_EQ(SmtpDataBlock(""), ".\r\n");
  EXPECT_TRUE(IsPlainAddress("a@b.c"));
  EXPECT_FALSE(IsPlainAddress("a b@c"));
  EXPECT_FALSE(IsPlainAddress("<a@b>"));
  EXPECT_FALSE(IsPlainAddress("a@b\r\nRCPT TO:<x@y>"));
}

TEST(DeviceRequest, RoutesAndRejects) {
  DeviceRequest r;
  ApiError e;
  ASSERT_TRUE(ParseDeviceRequest("POST", "/v1/messages/12/trash", "", &r, &e));
  EXPECT_EQ(r.op, DeviceRequest::Op::kSetState);
  EXPECT_EQ(r.id, 12u);
  EXPECT_EQ(r.state, MessageState::kTrash);
  ASSERT_TRUE(ParseDeviceRequest("POST", "/v1/compose", R"({"to":"a@b.c","subject":"s","via_sync":true})", &r, &e));
  EXPECT_TRUE(r.via_sync);
  EXPECT_FALSE(ParseDeviceRequest("POST", "/v1/compose", "{", &r, &e));
  EXPECT_EQ(e.code, "malformed_json");
  EXPECT_FALSE(ParseDeviceRequest("DELETE", "/v1/messages", "", &r, &e));
  EXPECT_EQ(e.http_status, 405);
  EXPECT_FALSE(ParseDeviceRequest("GET", "/v1/messages/-1", "", &r, &e));
  EXPECT_EQ(e.code, "bad_id");
  EXPECT_FALSE(ParseDeviceRequest("GET", "/v1/" + std::string(600, 'x'), "", &r, &e));
  EXPECT_EQ(e.http_status, 414);
}

}  // namespace
}  // namespace mobilesync::server
