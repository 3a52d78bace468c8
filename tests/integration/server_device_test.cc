// The device API of a running mobilesync-server, over real HTTP: every
// call, bad tokens, bad ids, oversized bodies and malformed JSON (clear 4xx,
// no crash, nothing written); mobilesync-device against it (text and
// --json); trigger e-mail and direct sends reaching a real SMTP sink.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "integration/server_fixture.h"
#include "sync_server/crypto_util.h"

namespace mobilesync::testing {
namespace {

using Json = nlohmann::json;
using server::HttpResponse;

Json Body(const HttpResponse& r) { return Json::parse(r.body, nullptr, false); }

class DeviceApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fx_.Start().ok()) << fx_.ServerLog(); }

  HttpResponse Call(const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& token = kAliceToken) {
    HttpResponse r;
    Status s = fx_.Api(method, path, body, &r, token);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }
  uint64_t Pending() {
    HttpResponse r = Call("GET", "/v1/status");
    return Body(r).value("pending_actions", 9999ull);
  }
  CommandResult Device(std::vector<std::string> args, const std::string& stdin_data = "",
                       std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {BuildDir() + "/src/sync_server/mobilesync-device", "--api",
                                     fx_.api()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r;
    Status s = RunCommand(argv, &r, milliseconds(30000), stdin_data, env);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }

  ServerFixture fx_;
};

TEST_F(DeviceApiTest, EveryCallWorksAndRecordsAnAction) {
  uint64_t a = fx_.Inject("first", 1000);
  uint64_t b = fx_.Inject("second", 2000);
  ASSERT_NE(a, 0u);
  ASSERT_NE(b, 0u);
  EXPECT_EQ(Pending(), 2u);  // two inserts

  HttpResponse r = Call("GET", "/v1/messages");
  ASSERT_EQ(r.status, 200) << r.body;
  Json list = Body(r);
  EXPECT_EQ(list["window_size"], 6);
  ASSERT_EQ(list["messages"].size(), 2u);
  EXPECT_EQ(list["messages"][0]["id"], b);  // newest first
  EXPECT_EQ(list["messages"][0]["subject"], "second");
  EXPECT_EQ(list["messages"][0]["state"], "unread");

  r = Call("GET", "/v1/messages/" + std::to_string(a));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(Body(r)["body"].get<std::string>().find("Body of first"), std::string::npos);

  struct Step {
    const char* verb;
    const char* state;
  } steps[] = {{"read", "read"}, {"unread", "unread"}, {"trash", "trash"}, {"restore", "unread"}};
  uint64_t pending = Pending();
  for (const Step& st : steps) {
    r = Call("POST", "/v1/messages/" + std::to_string(a) + "/" + st.verb);
    ASSERT_EQ(r.status, 200) << st.verb << " " << r.body;
    EXPECT_EQ(Body(r)["state"], st.state) << st.verb;
    EXPECT_EQ(Pending(), ++pending) << st.verb;
  }
  // Restore of a message not in Trash is a clear conflict.
  r = Call("POST", "/v1/messages/" + std::to_string(a) + "/restore");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Body(r)["error"]["code"], "not_in_trash");

  r = Call("POST", "/v1/messages/" + std::to_string(b) + "/destroy");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["state"], "destroyed");
  r = Call("GET", "/v1/messages/" + std::to_string(b));
  EXPECT_EQ(r.status, 404);

  r = Call("POST", "/v1/compose",
           R"({"to":"carol@example.org","subject":"Lunch","body":"At noon?","via_sync":true})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Body(r)["via"], "sync");
  EXPECT_TRUE(Body(r)["queued"].get<bool>());

  r = Call("GET", "/v1/status");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["user"], "alice");
  EXPECT_EQ(Body(r)["window_count"], 1);
  EXPECT_FALSE(Body(r)["agent_connected"].get<bool>());
}

TEST_F(DeviceApiTest, BadTokensAreRefusedAndUsersAreIsolated) {
  uint64_t a = fx_.Inject("private", 1000);
  HttpResponse r = Call("GET", "/v1/messages", "", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Body(r)["error"]["code"], "unauthorized");
  r = Call("GET", "/v1/messages", "", "not-a-token");
  EXPECT_EQ(r.status, 401);
  r = Call("POST", "/v1/messages/" + std::to_string(a) + "/read", "", "not-a-token");
  EXPECT_EQ(r.status, 401);
  // Bob's device cannot see or touch Alice's message.
  r = Call("GET", "/v1/messages/" + std::to_string(a), "", kBobToken);
  EXPECT_EQ(r.status, 404);
  r = Call("POST", "/v1/messages/" + std::to_string(a) + "/destroy", "", kBobToken);
  EXPECT_EQ(r.status, 404);
  r = Call("GET", "/v1/messages", "", kBobToken);
  EXPECT_EQ(Body(r)["messages"].size(), 0u);
  // The token never reaches the log.
  EXPECT_EQ(fx_.ServerLog().find("not-a-token"), std::string::npos);
  EXPECT_EQ(fx_.ServerLog().find(kAliceToken), std::string::npos);
  r = Call("GET", "/v1/messages/" + std::to_string(a));
  EXPECT_EQ(Body(r)["state"], "unread");
}

TEST_F(DeviceApiTest, BadInputGetsAClear4xxAndWritesNothing) {
  uint64_t a = fx_.Inject("m", 1000);
  const uint64_t before = Pending();
  struct Case {
    const char* method;
    std::string path;
    std::string body;
    int status;
    const char* code;
  } cases[] = {
      {"GET", "/v1/messages/abc", "", 400, "bad_id"},
      {"GET", "/v1/messages/0", "", 400, "bad_id"},
      {"POST", "/v1/messages/99999999999999999999/read", "", 400, "bad_id"},
      {"POST", "/v1/messages/424242/read", "", 404, "not_found"},
      {"GET", "/v1/messages/424242", "", 404, "not_found"},
      {"POST", "/v1/messages/" + std::to_string(a) + "/frobnicate", "", 404, "no_such_endpoint"},
      {"GET", "/v1/messages/" + std::to_string(a) + "/read", "", 405, "method_not_allowed"},
      {"GET", "/v2/messages", "", 404, "no_such_endpoint"},
      {"POST", "/v1/compose", "{not json", 400, "malformed_json"},
      {"POST", "/v1/compose", "", 400, "malformed_json"},
      {"POST", "/v1/compose", "[1,2]", 400, "malformed_json"},
      {"POST", "/v1/compose", R"({"to":["x"]})", 400, "bad_request"},
      {"POST", "/v1/compose", R"({"to":"nobody"})", 400, "bad_request"},
      {"POST", "/v1/compose", R"({"to":"a@b.c","subject":"x\r\nBcc: evil@x"})", 400, "bad_request"},
      {"POST", "/v1/compose", R"({"to":"a@b.c","via_sync":"yes"})", 400, "bad_request"},
      {"POST", "/v1/compose", R"({"to":"a@b.c","extra":1})", 400, "bad_request"},
      {"POST", "/v1/messages", R"({"message":""})", 400, "bad_request"},
      {"POST", "/v1/messages", R"({"message":"x","date":-5})", 400, "bad_request"},
  };
  for (const Case& c : cases) {
    HttpResponse r = Call(c.method, c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << " -> " << r.body;
    EXPECT_EQ(Body(r)["error"]["code"], c.code) << c.path << " " << c.body;
  }
  // Over the 1 MiB bound: evhttp refuses it before we parse anything.
  std::string big = R"({"to":"a@b.c","body":")" + std::string(2 << 20, 'x') + "\"}";
  HttpResponse r;
  Status s = fx_.Api("POST", "/v1/compose", big, &r);
  EXPECT_TRUE(s.ok() ? r.status == 413 : true) << r.status;
  EXPECT_EQ(Pending(), before);
  // Still alive and answering.
  r = Call("GET", "/v1/messages");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["messages"].size(), 1u);
}

TEST_F(DeviceApiTest, DeviceCommandLineTextAndJson) {
  uint64_t a = fx_.Inject("Hello phone", 1700000000);
  std::string tf = fx_.alice_token_file();
  CommandResult r = Device({"--token-file", tf, "list"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Hello phone"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2023-11-14"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 of 6 slots used"), std::string::npos) << r.output;

  r = Device({"--token-file", tf, "--json", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Json j = Json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["messages"][0]["id"], a);

  const std::string id = std::to_string(a);
  r = Device({"--token-file", tf, "show", id});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Body of Hello phone"), std::string::npos) << r.output;
  for (const char* verb : {"read", "unread", "trash", "restore"}) {
    r = Device({"--token-file", tf, verb, id});
    EXPECT_EQ(r.exit_code, 0) << verb << r.output;
    EXPECT_NE(r.output.find("message " + id + ":"), std::string::npos) << r.output;
  }
  r = Device({"--json", "read", id}, "", {"MOBILESYNC_DEVICE_TOKEN_FILE=" + tf});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Json::parse(r.output, nullptr, false)["state"], "read");

  r = Device({"--token-file", tf, "compose", "--to", "dave@example.org", "--subject", "Hi",
              "--via-sync"},
             "Hello from the phone\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("queued"), std::string::npos) << r.output;

  // Errors: unknown id, bad token, world-readable token file, no token.
  r = Device({"--token-file", tf, "read", "424242"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no message 424242"), std::string::npos) << r.output;
  r = Device({"--token-file", tf, "--json", "show", "424242"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("\"not_found\""), std::string::npos) << r.output;
  ASSERT_TRUE(WriteFile(fx_.dir() + "/wrong.token", "wrong\n", 0600).ok());
  r = Device({"--token-file", fx_.dir() + "/wrong.token", "list"});
  EXPECT_EQ(r.exit_code, 77);
  EXPECT_NE(r.output.find("unknown bearer token"), std::string::npos) << r.output;
  ASSERT_TRUE(WriteFile(fx_.dir() + "/open.token", kAliceToken + "\n", 0644).ok());
  r = Device({"--token-file", fx_.dir() + "/open.token", "list"});
  EXPECT_EQ(r.exit_code, 77);
  EXPECT_NE(r.output.find("mode 0644"), std::string::npos) << r.output;
  r = Device({"list"});
  EXPECT_EQ(r.exit_code, 77);
  EXPECT_NE(r.output.find("--token-file"), std::string::npos) << r.output;
  r = Device({"--token-file", tf, "destroy", id});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Device({"--token-file", tf, "show", id});
  EXPECT_EQ(r.exit_code, 1) << r.output;
}

// Parses "k=v; k=v" of the trigger header.
std::map<std::string, std::string> TriggerFields(const std::string& value) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < value.size()) {
    size_t semi = value.find(';', pos);
    std::string part = value.substr(pos, semi == std::string::npos ? std::string::npos : semi - pos);
    size_t b = part.find_first_not_of(' ');
    part = b == std::string::npos ? "" : part.substr(b);
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      out[""] = part;
    } else {
      out[part.substr(0, eq)] = part.substr(eq + 1);
    }
    if (semi == std::string::npos) break;
    pos = semi + 1;
  }
  return out;
}

TEST_F(DeviceApiTest, SyncNowWithoutAgentMailsAVerifiableTrigger) {
  const int64_t before = time(nullptr);
  CommandResult r = Device({"--token-file", fx_.alice_token_file(), "sync-now"});
  ASSERT_EQ(r.exit_code, 0) << r.output << fx_.ServerLog();
  EXPECT_NE(r.output.find("trigger e-mail sent"), std::string::npos) << r.output;
  std::vector<std::string> mails;
  ASSERT_TRUE(WaitFor([&] {
    mails = fx_.SinkMessages();
    return !mails.empty();
  }));
  ASSERT_EQ(mails.size(), 1u);
  const std::string& m = mails[0];
  EXPECT_NE(m.find("To: alice@example.test"), std::string::npos) << m;
  size_t h = m.find("X-Mobilesync-Trigger: ");
  ASSERT_NE(h, std::string::npos) << m;
  std::string value = m.substr(h + 22, m.find('\n', h) - h - 22);
  if (!value.empty() && value.back() == '\r') value.pop_back();
  auto f = TriggerFields(value);
  EXPECT_EQ(f[""], "v1") << value;
  EXPECT_EQ(f["user"], "alice");
  ASSERT_TRUE(server::IsLowerHex(f["nonce"], 32)) << value;
  ASSERT_TRUE(server::IsLowerHex(f["mac"], 64)) << value;
  int64_t ts = std::stoll(f["ts"]);
  EXPECT_GE(ts, before);
  EXPECT_LE(ts, time(nullptr));
  // The plugin's check: mac = hex(HMAC-SHA256(secret, "v1\n<user>\n<ts>\n<nonce>")).
  EXPECT_EQ(f["mac"], server::HmacSha256Hex(kTriggerSecret, "v1\nalice\n" + f["ts"] + "\n" + f["nonce"]));
  EXPECT_TRUE(fx_.WaitForLog("user=alice: trigger mail sent"));
  // A second request right away is rate-limited, not mailed again.
  r = Device({"--token-file", fx_.alice_token_file(), "--json", "sync-now"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(fx_.SinkMessages().size(), 1u);
}

TEST_F(DeviceApiTest, ComposeDirectGoesOutBySmtpAndIsFiledAsSent) {
  const uint64_t before = Pending();
  CommandResult r = Device({"--token-file", fx_.alice_token_file(), "--json", "compose", "--to",
                            "erin@example.org", "--subject", "Direct"},
                           ".leading dot line\nsecond line\n");
  ASSERT_EQ(r.exit_code, 0) << r.output << fx_.ServerLog();
  EXPECT_EQ(Json::parse(r.output, nullptr, false)["via"], "smtp") << r.output;
  std::vector<std::string> mails;
  ASSERT_TRUE(WaitFor([&] {
    mails = fx_.SinkMessages();
    return !mails.empty();
  }));
  EXPECT_NE(mails[0].find("Subject: Direct"), std::string::npos);
  EXPECT_NE(mails[0].find("\n.leading dot line"), std::string::npos) << mails[0];
  EXPECT_EQ(Pending(), before + 1);  // FILED_AS_SENT for the organisation
}

TEST(DeviceApiSmtpDown, DirectSendFailsClearlyAndSyncNowSaysSo) {
  ServerFixture fx;
  ServerOptions o;
  o.smtp_sink = false;
  ASSERT_TRUE(fx.Start(o).ok()) << fx.ServerLog();
  HttpResponse r;
  ASSERT_TRUE(fx.Api("POST", "/v1/compose", R"({"to":"a@b.c","subject":"x","body":"y"})", &r).ok());
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(Body(r)["error"]["code"], "smtp_failed");
  ASSERT_TRUE(fx.Api("POST", "/v1/sync-now", "", &r).ok());
  EXPECT_EQ(r.status, 502);
}

}  // namespace
}  // namespace mobilesync::testing
