// Security properties that no other suite shows (docs/security.md maps every
// defence to its test, here or elsewhere):
//
// SecurityTls.*     the agent's TLS client (src/sync_agent/tls_context.h)
//                   against a real TLS server on loopback: one table of bad
//                   server certificates and protocol versions, each refused
//                   with its reason. (remote_connection_test.cc shows the
//                   same through RemoteConnection for most rows; self-signed
//                   and not-yet-valid are only here.)
// SecurityServerTls.* the server's client-certificate check
//                   (tls_client_ca_file): a certificate from the server's own
//                   CA that has expired, or is not yet valid, is refused in
//                   the TLS handshake, even with a valid deployment token.
// SecuritySystem.*  the whole system (MobilesyncSystem: Dovecot + plugin,
//                   mobilesync-server, mobilesync-agent, MTA stand-in):
//                   hostile SETMETADATA action entries written by one user
//                   stay with that user; no secret reaches any log.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <sys/stat.h>
#include <chrono>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "harness/convergence.h"
#include "harness/system_fixture.h"
#include "harness/test_certs.h"
#include "integration/server_fixture.h"
#include "plugin/action_record.h"
#include "sync_agent/tls_context.h"

namespace mobilesync::testing {
namespace {

// ------------------------------------------------------------------ TLS

struct ServerSide {
  PemPaths cert;
  bool tls11_only = false;
};

// One TLS handshake: a server thread (blocking OpenSSL, the given
// certificate) accepts one connection from the agent's TLS client context,
// which dials "127.0.0.1" and verifies `host`. Returns the client's verdict:
// OK, or the reason the agent would log (DescribeTlsFailure).
Status Handshake(const std::string& ca_file, const ServerSide& server, const std::string& host) {
  // Either side may write to a socket the other just closed (the agent
  // ignores SIGPIPE the same way).
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> sctx(SSL_CTX_new(TLS_server_method()),
                                                         &SSL_CTX_free);
  if (server.tls11_only) {
    SSL_CTX_set_security_level(sctx.get(), 0);  // OpenSSL 3 needs it for 1.1
    SSL_CTX_set_min_proto_version(sctx.get(), TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(sctx.get(), TLS1_1_VERSION);
  }
  if (SSL_CTX_use_certificate_chain_file(sctx.get(), server.cert.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(sctx.get(), server.cert.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::IOError("test server certificate", agent::DrainOpenSslErrors());
  }
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin = {};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
    close(lfd);
    return Status::IOError("listen");
  }
  std::thread accepter([&] {
    int fd = accept(lfd, nullptr, nullptr);
    if (fd < 0) return;
    SSL* ssl = SSL_new(sctx.get());
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
  });

  agent::TlsClientOptions o;
  o.ca_file = ca_file;
  std::unique_ptr<agent::TlsClientContext> ctx;
  Status s = agent::TlsClientContext::Create(o, &ctx);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (s.ok() && connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    s = Status::IOError("connect");
  }
  const bool connected = s.ok();
  agent::SslPtr ssl;
  if (s.ok()) s = ctx->NewSsl(host, &ssl);
  if (s.ok()) {
    SSL_set_fd(ssl.get(), fd);
    ERR_clear_error();
    if (SSL_connect(ssl.get()) != 1) {
      s = Status::PermissionDenied("refused",
                                   agent::DescribeTlsFailure(ssl.get(), ERR_peek_error()));
    }
    ERR_clear_error();
  }
  ssl.reset();
  shutdown(fd, SHUT_RDWR);  // unblocks the server if we never connected
  close(fd);
  if (!connected) {
    // Never connected: let the accepter go.
    int poke = socket(AF_INET, SOCK_STREAM, 0);
    (void)connect(poke, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    close(poke);
  }
  accepter.join();
  close(lfd);
  return s;
}

class SecurityTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(ca_.Create(dir_.path(), "test").ok());
    ASSERT_TRUE(ca_.Issue(CertSpec(), dir_.path(), "good", &good_).ok());
  }
  TempDir dir_;
  TestCa ca_;
  PemPaths good_;
};

TEST_F(SecurityTls, AgentTlsClientRefusesBadServers) {
  // The control row: the same client accepts a good server.
  Status ok = Handshake(ca_.ca_paths().cert, {good_}, "localhost");
  ASSERT_TRUE(ok.ok()) << ok.ToString();
  ok = Handshake(ca_.ca_paths().cert, {good_}, "127.0.0.1");
  ASSERT_TRUE(ok.ok()) << ok.ToString();

  TestCa other;
  ASSERT_TRUE(other.Create(dir_.path(), "other").ok());
  PemPaths wrong_ca, self_signed, expired, not_yet, ca_as_server;
  ASSERT_TRUE(other.Issue(CertSpec(), dir_.path(), "wrong-ca", &wrong_ca).ok());
  ASSERT_TRUE(MakeSelfSigned(CertSpec(), dir_.path(), "self-signed", &self_signed).ok());
  CertSpec old;
  old.not_before_s = -10 * 86400;
  old.not_after_s = -86400;
  ASSERT_TRUE(ca_.Issue(old, dir_.path(), "expired", &expired).ok());
  CertSpec future;
  future.not_before_s = 86400;
  future.not_after_s = 10 * 86400;
  ASSERT_TRUE(ca_.Issue(future, dir_.path(), "not-yet", &not_yet).ok());

  struct Row {
    const char* what;
    ServerSide server;
    std::string host;
    std::vector<std::string> reasons;  // one of them must be in the error
  };
  const std::vector<Row> rows = {
      {"certificate from another CA", {wrong_ca}, "localhost", {"unable to get local issuer"}},
      {"self-signed certificate", {self_signed}, "localhost", {"self-signed", "self signed"}},
      {"expired certificate", {expired}, "localhost", {"certificate has expired"}},
      {"certificate not yet valid", {not_yet}, "localhost", {"not yet valid"}},
      {"wrong host name", {good_}, "mobile.example.net", {"hostname mismatch"}},
      {"wrong IP address", {good_}, "127.0.0.2", {"IP address mismatch"}},
      {"TLS 1.1 at most", {good_, /*tls11_only=*/true}, "localhost", {"protocol", "version"}},
  };
  for (const Row& row : rows) {
    Status s = Handshake(ca_.ca_paths().cert, row.server, row.host);
    EXPECT_FALSE(s.ok()) << row.what << " was accepted";
    bool named = false;
    for (const std::string& r : row.reasons)
      named = named || s.ToString().find(r) != std::string::npos;
    EXPECT_TRUE(named) << row.what << ": " << s.ToString();
  }
}

// ------------------------------------------------------------ the system

constexpr milliseconds kDeadline(30000);

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

class SecuritySystem : public ::testing::Test {
 protected:
  void StartSystem(const SystemOptions& o = {}) {
    Status s = sys_.Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString() << sys_.Logs();
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "system dir " << sys_.dir() << sys_.Logs() << "\n";
  }
  // What alice sees on both sides, as one comparable text.
  std::string AliceView() {
    std::string out;
    for (const char* box : {"INBOX", "Trash", "Sent"}) {
      std::vector<ImapMessage> msgs;
      Status s = sys_.ImapList("alice", box, &msgs);
      EXPECT_TRUE(s.ok()) << s.ToString();
      for (const ImapMessage& m : msgs) {
        out += std::string(box) + " " + std::to_string(m.uid) + " [" + m.flags + "] " + m.subject +
               "\n";
      }
    }
    std::vector<DeviceMessage> dev;
    Status s = sys_.DeviceList("alice", &dev);
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (const DeviceMessage& m : dev) {
      out += "device " + std::to_string(m.id) + " " + m.state + " " + m.subject + "\n";
    }
    return out;
  }
  uint32_t UidValidity(const std::string& user, const std::string& box) {
    ImapTestClient imap;
    EXPECT_TRUE(sys_.ImapLogin(user, &imap).ok());
    ImapResponse r;
    EXPECT_TRUE(imap.Command("STATUS " + box + " (UIDVALIDITY)", &r).ok());
    imap.Logout();
    std::string t = r.Text();
    size_t p = t.find("UIDVALIDITY ");
    return p == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(t.substr(p + 12)));
  }

  MobilesyncSystem sys_;
};

// Bob (an ordinary mail user) may SETMETADATA his own action list. Whatever
// he writes there, the agent reads it in a session logged in as
// bob*master: it can name alice, alice's mailbox names and ids, hold
// control bytes or be huge; alice's mailbox and device are untouched, the
// agent keeps running and keeps serving alice.
TEST_F(SecuritySystem, HostileActionEntriesOfOneUserStayWithThatUser) {
  StartSystem();
  ASSERT_TRUE(sys_.Deliver("alice", "alice private 1").ok());
  ASSERT_TRUE(sys_.Deliver("alice", "alice private 2").ok());
  ASSERT_TRUE(sys_.Deliver("bob", "bob own").ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        DeviceMessage m;
        (void)sys_.SyncWait("alice");
        return sys_.DeviceFind("alice", "alice private 2", &m);
      },
      kDeadline))
      << sys_.Logs();
  ASSERT_TRUE(WaitFor([&] { return sys_.SyncWait("bob").ok(); }, kDeadline)) << sys_.Logs();
  std::vector<ImapMessage> alice_inbox;
  ASSERT_TRUE(sys_.ImapList("alice", "INBOX", &alice_inbox).ok());
  ASSERT_EQ(alice_inbox.size(), 2u);
  const uint32_t alice_uv = UidValidity("alice", "INBOX");
  ASSERT_NE(alice_uv, 0u);
  const std::string before = AliceView();
  const size_t agent_offset = sys_.AgentLog().size();

  // Bob's hostile entries: well-formed records naming alice's things, and
  // raw values no plugin would write.
  std::vector<std::string> values;
  const std::vector<std::string> foreign_boxes = {"alice",
                                                  "alice/INBOX",
                                                  "user/alice/INBOX",
                                                  "../alice/INBOX",
                                                  "~alice/INBOX",
                                                  "#shared/alice/INBOX",
                                                  "Other Users/alice/INBOX",
                                                  "INBOX\x01\x7f\r\nuser=alice",
                                                  "alice*mobilesync-agent/INBOX",
                                                  "INBOX/../../alice"};
  const std::vector<plugin::ActionKind> kinds = {
      plugin::ActionKind::kInsert, plugin::ActionKind::kRead, plugin::ActionKind::kTrash,
      plugin::ActionKind::kDestroy, plugin::ActionKind::kSent};
  for (const std::string& box : foreign_boxes) {
    for (plugin::ActionKind kind : kinds) {
      plugin::ActionRecord r;
      r.kind = kind;
      r.box = box;
      r.uidvalidity = alice_uv;
      r.uid = alice_inbox[0].uid;
      r.guid = "0123456789abcdef0123456789abcdef";
      r.ts_us = 1700000000000000ull;
      if (kind == plugin::ActionKind::kTrash) {
        r.src_box = "alice/INBOX";
        r.src_uidvalidity = alice_uv;
        r.src_uid = alice_inbox[1].uid;
      }
      std::string v;
      if (plugin::FormatActionValue(r, &v).ok()) values.push_back(v);
    }
  }
  // alice's ids in bob's own INBOX name (at worst) bob's own messages.
  for (plugin::ActionKind kind : kinds) {
    plugin::ActionRecord r;
    r.kind = kind;
    r.box = "INBOX";
    r.uidvalidity = alice_uv;
    r.uid = alice_inbox[1].uid;
    r.ts_us = 1700000000000000ull;
    std::string v;
    if (plugin::FormatActionValue(r, &v).ok()) values.push_back(v);
  }
  // Raw values no plugin would write: each forces a full resync of bob
  // (which drops the list), so they come in a second round.
  std::vector<std::string> raw;
  raw.push_back("v1 kind=destroy user=alice box=INBOX uidvalidity=" + std::to_string(alice_uv) +
                " uid=1 ts=1");
  raw.push_back("v1 kind=insert box=%00alice%2FINBOX uidvalidity=1 uid=1 ts=1");
  raw.push_back("v1 kind=read box=INBOX uidvalidity=4294967295 uid=4294967295 ts=" +
                std::string(40, '9'));
  raw.push_back("v1 kind=insert box=" + std::string(100000, 'A') + " uidvalidity=1 uid=1 ts=1");
  raw.push_back(std::string("v1 kind=read box=INBOX\x01\x02\x1b[31m uidvalidity=1 uid=1 ts=1"));
  raw.push_back(std::string(300000, 'x'));
  raw.push_back("v2 kind=anything");

  uint32_t counter = 0;
  // Stores the values as bob; returns how many Dovecot accepted.
  auto store = [&](const std::vector<std::string>& vals, const std::vector<std::string>& more) {
    ImapTestClient imap;
    EXPECT_TRUE(sys_.ImapLogin("bob", &imap).ok());
    size_t stored = 0;
    for (const std::string& v : vals) {
      const std::string key = std::string("/private/vendor/vendor.mobilesync/action/") +
                              plugin::FormatActionKeyId(1700000000000000ull, 4242, ++counter);
      ImapResponse r;
      // A literal carries any byte (the server may refuse some: fine).
      EXPECT_TRUE(imap.Command("SETMETADATA \"\" (" + key + " {" + std::to_string(v.size()) +
                                   "+}\r\n" + v + ")",
                               &r)
                      .ok());
      stored += r.ok();
    }
    for (const std::string& kv : more) {
      ImapResponse r;
      EXPECT_TRUE(imap.Command("SETMETADATA \"\" (" + kv + ")", &r).ok());
    }
    imap.Logout();
    return stored;
  };
  // Bob's sessions read them (whatever they end in: his own business).
  auto bob_syncs = [&] {
    const size_t offset = sys_.AgentLog().size();
    for (int i = 0; i < 3; ++i) (void)sys_.SyncWait("bob");
    EXPECT_TRUE(WaitFor(
        [&] {
          return sys_.AgentLog().find("user=bob: session finished", offset) != std::string::npos;
        },
        kDeadline));
  };

  // Round 1: well-formed records, replayed by an update sync of bob.
  ASSERT_GT(store(values, {}), foreign_boxes.size())
      << "Dovecot refused the entries: nothing was tested";
  bob_syncs();
  EXPECT_EQ(AliceView(), before);
  // Round 2: raw values, and the map and generation entries.
  EXPECT_GT(store(raw, {"/private/vendor/vendor.mobilesync/map/alice "
                        "\"v1 remote=1 box=alice%2FINBOX\"",
                        "/private/vendor/vendor.mobilesync/generation \"-1\""}),
            0u);
  bob_syncs();

  // The agent lives and still serves alice; alice's view is unchanged.
  EXPECT_TRUE(sys_.agent_running()) << sys_.Logs();
  CommandResult st = sys_.Ctl({"status"});
  EXPECT_EQ(st.exit_code, 0) << st.output;
  // Still served (a retry is fine; a stuck or dead agent is not).
  EXPECT_TRUE(WaitFor([&] { return sys_.SyncWait("alice").ok(); }, kDeadline)) << sys_.Logs();
  EXPECT_EQ(AliceView(), before);
  size_t alice_pending = 99;
  ASSERT_TRUE(sys_.PendingActions("alice", &alice_pending).ok());
  EXPECT_EQ(alice_pending, 0u);

  // Every agent line about the hostile entries is bob's; none is alice's
  // (the agent's log lines name the user they act for).
  const std::string log = sys_.AgentLog().substr(agent_offset);
  size_t pos = 0, bob_lines = 0;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    if (nl == std::string::npos) nl = log.size();
    const std::string line = log.substr(pos, nl - pos);
    pos = nl + 1;
    const bool about_entries = line.find("action entry") != std::string::npos ||
                               line.find("alice/INBOX") != std::string::npos ||
                               line.find("alice%2FINBOX") != std::string::npos;
    if (!about_entries) continue;
    EXPECT_NE(line.find("user=bob"), std::string::npos) << line;
    EXPECT_EQ(line.find("user=alice"), std::string::npos) << line;
    ++bob_lines;
    // Control bytes from the entries never reach the log raw.
    for (char c : line) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 && c != '\t') << line;
  }
  EXPECT_GT(bob_lines, 0u) << "the agent never read bob's entries" << log;
  // Dovecot's view: the agent only ever logged in as bob*master for bob.
  EXPECT_EQ(sys_.DovecotLog().find("Panic"), std::string::npos) << sys_.DovecotLog();
  EXPECT_EQ(sys_.DovecotLog().find("Fatal"), std::string::npos) << sys_.DovecotLog();
}

// Every file under `dir` whose name ends in ".log" (recursively), plus the
// logs the fixture knows about.
void CollectLogs(const std::string& dir, std::map<std::string, std::string>* out) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      CollectLogs(path, out);
    } else if (S_ISREG(st.st_mode) && name.size() > 4 &&
               name.compare(name.size() - 4, 4, ".log") == 0) {
      std::string text;
      if (ReadFile(path, &text).ok()) (*out)[path] = text;
    }
  }
  closedir(d);
}

// ------------------------------------------------------- server TLS

// The server asks agents for a client certificate (tls_client_ca_file) and
// lets an agent in by certificate alone (agents_file: cert_cn=). A
// certificate signed by that very CA, with the provisioned name, but out of
// its validity period must not open the door, token or not.
TEST(SecurityServerTls, ServerRefusesExpiredClientCertificateFromItsOwnCa) {
  ServerFixture fx;
  Status s = fx.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  CertSpec expired_spec;
  expired_spec.common_name = "agent.corp.example";  // provisioned: certonly
  expired_spec.dns_names = {"agent.corp.example"};
  expired_spec.ip_addresses = {};
  expired_spec.not_before_s = -30L * 86400;
  expired_spec.not_after_s = -86400;  // expired yesterday
  PemPaths expired, early;
  ASSERT_TRUE(fx.IssueClientCert(expired_spec, "expired-agent", &expired).ok());
  CertSpec early_spec = expired_spec;
  early_spec.not_before_s = 86400;  // valid from tomorrow
  early_spec.not_after_s = 30L * 86400;
  ASSERT_TRUE(fx.IssueClientCert(early_spec, "early-agent", &early).ok());

  // The control row: the valid certificate of the same name gets in.
  TlsProtocolClient good;
  ASSERT_TRUE(good.Connect(fx.agent_port(), fx.ca_cert(), fx.agent_cert()).ok());
  ASSERT_TRUE(good.Hello("").ok()) << fx.ServerLog();
  good.Close();
  ASSERT_TRUE(fx.WaitForLog("authenticated"));
  const size_t offset = fx.ServerLog().size();

  struct Row {
    const char* what;
    const PemPaths* cert;
    std::string token;
  } rows[] = {
      {"expired", &expired, ""},
      {"expired, with a valid deployment token", &expired, kAgentToken},
      {"not yet valid", &early, ""},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    TlsProtocolClient c;
    Status r = c.Connect(fx.agent_port(), fx.ca_cert(), *row.cert);
    // With TLS 1.3 the client finishes its side of the handshake before the
    // server has checked its certificate: the refusal arrives on first read.
    if (r.ok()) r = c.Hello(row.token);
    EXPECT_FALSE(r.ok()) << "the server let in a client certificate that is " << row.what;
  }
  // The server says why, once per attempt, and let nobody in.
  ASSERT_TRUE(WaitFor([&] {
    return CountOf(fx.ServerLog(), "client certificate refused", offset) >= 3;
  })) << fx.ServerLog().substr(offset);
  const std::string log = fx.ServerLog().substr(offset);
  EXPECT_EQ(CountOf(log, ": authenticated ("), 0u) << log;
  EXPECT_EQ(CountOf(log, "client certificate refused: certificate has expired"), 2u) << log;
  EXPECT_EQ(CountOf(log, "client certificate refused: certificate is not yet valid"), 1u) << log;
}

// The whole system at log level debug through a sync, a device read, a
// live sync-now, a server restart and a trigger e-mail: not one log line
// holds the master password, the deployment token, a device token or the
// trigger secret.
TEST_F(SecuritySystem, NoSecretInAnyLog) {
  SystemOptions o;
  o.log_level = "debug";
  o.mail_debug = true;     // Dovecot's most talkative setting, plugin included
  o.reconnect_min = "2m";  // offline after the server restart: trigger mail
  o.reconnect_max = "5m";
  StartSystem(o);
  std::string master_pw;
  ASSERT_TRUE(ReadFile(sys_.dir() + "/master.pw", &master_pw).ok());
  while (!master_pw.empty() && master_pw.back() == '\n') master_pw.pop_back();
  const std::map<std::string, std::string> secrets = {
      {"master password", master_pw},
      {"deployment token", kSystemAgentToken},
      {"alice's device token", DeviceToken("alice")},
      {"bob's device token", DeviceToken("bob")},
      {"trigger secret", kSystemTriggerSecret},
  };
  ASSERT_FALSE(master_pw.empty());

  ASSERT_TRUE(sys_.Deliver("alice", "secret test").ok());
  DeviceMessage m;
  ASSERT_TRUE(WaitFor(
      [&] {
        (void)sys_.SyncWait("alice");
        return sys_.DeviceFind("alice", "secret test", &m);
      },
      kDeadline))
      << sys_.Logs();
  DeviceResult d = sys_.Device("alice", {"read", std::to_string(m.id)});
  EXPECT_EQ(d.exit_code, 0) << d.output;
  d = sys_.Device("bob", {"list"});
  EXPECT_EQ(d.exit_code, 0) << d.output;
  d = sys_.Device("alice", {"sync-now"});
  EXPECT_EQ(d.exit_code, 0) << d.output;
  (void)sys_.SyncWait("bob");
  EXPECT_EQ(sys_.Ctl({"--json", "status"}).exit_code, 0);

  // Trigger e-mail: the server signs with the secret, the plugin checks it.
  sys_.KillServer();
  ASSERT_TRUE(sys_.RestartServer().ok());
  ASSERT_TRUE(WaitFor([&] { return !sys_.AgentConnected(); }));
  const size_t triggers = Count(sys_.AgentLog(), "session started (trigger message)");
  d = sys_.Device("alice", {"sync-now"});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_TRUE(WaitFor(
      [&] { return Count(sys_.AgentLog(), "session started (trigger message)") > triggers; },
      kDeadline))
      << sys_.Logs();
  // A device with a wrong token and a bad login are logged too.
  ImapTestClient bad;
  ASSERT_TRUE(bad.Connect("127.0.0.1", sys_.dovecot().imap_port()).ok());
  EXPECT_FALSE(bad.Login("alice*" + sys_.dovecot().options().master_user, "wrong").ok());

  std::map<std::string, std::string> logs;
  CollectLogs(sys_.dir(), &logs);
  logs["agent (AgentLog)"] = sys_.AgentLog();
  logs["server (ServerLog)"] = sys_.ServerLog();
  logs["dovecot (DovecotLog)"] = sys_.DovecotLog();
  logs["mta (MtaLog)"] = sys_.MtaLog();
  ASSERT_GE(logs.size(), 4u);
  size_t bytes = 0;
  for (const auto& [name, text] : logs) {
    bytes += text.size();
    for (const auto& [what, secret] : secrets) {
      size_t at = text.find(secret);
      EXPECT_EQ(at, std::string::npos)
          << what << " in " << name << ": ..."
          << text.substr(at == std::string::npos ? 0 : (at > 80 ? at - 80 : 0), 200);
    }
  }
  // The logs are real: debug output of every process, thousands of lines.
  EXPECT_GT(bytes, 20000u);
  EXPECT_NE(logs["agent (AgentLog)"].find("remote: handshake done"), std::string::npos);
  EXPECT_NE(logs["server (ServerLog)"].find("authenticated"), std::string::npos);
}

}  // namespace
}  // namespace mobilesync::testing
