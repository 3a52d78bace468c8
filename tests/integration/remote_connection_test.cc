// RemoteConnection against test TLS servers in this process (OpenSSL on
// libevent, 127.0.0.1 port 0, certificates from TestCa): a good server,
// wrong CA, wrong host name, expired certificate, a TLS 1.1-only server, a
// server that never speaks TLS (time-out and backoff) and one that drops
// the connection mid-message (reconnect and resume).
#include "sync_agent/remote_connection.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "common/event_loop.h"
#include "harness/dovecot_instance.h"
#include "harness/temp_dir.h"
#include "harness/test_certs.h"

namespace mobilesync::agent {
namespace {

using std::chrono::milliseconds;
using testing::CertSpec;
using testing::PemPaths;
using testing::TempDir;
using testing::TestCa;

bool RunUntil(event_base* base, const std::function<bool()>& cond,
              milliseconds timeout = milliseconds(15000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    timeval tv = {0, 10000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return true;
}

// A line protocol for tests: collects complete lines; partial input is
// dropped on disconnect (as a frame decoder must be reset).
class LineProtocol : public RemoteProtocol {
 public:
  void OnConnected(RemoteConnection* conn) override {
    ++connected;
    conn->ResetBackoff();
    (void)conn->Send("hi\n");
  }
  Status OnBytes(std::string_view data) override {
    partial.append(data);
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      lines.push_back(partial.substr(0, nl));
      partial.erase(0, nl + 1);
    }
    return Status::OK();
  }
  void OnKeepalive() override { ++keepalives; }
  void OnDisconnected(const Status&) override {
    ++disconnected;
    partial.clear();
  }
  int connected = 0, disconnected = 0, keepalives = 0;
  std::string partial;
  std::vector<std::string> lines;
};

struct ServerCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

// A TLS (or silent TCP) server on 127.0.0.1, port chosen by the kernel.
class TestServer {
 public:
  enum class Mode { kTls, kSilentTcp };
  TestServer(event_base* base, Mode mode) : base_(base), mode_(mode) {}
  ~TestServer() {
    for (auto* b : conns_) bufferevent_free(b);
    for (int fd : silent_) close(fd);
    if (listener_) evconnlistener_free(listener_);
  }

  Status Start(const PemPaths& cert, bool tls11_only = false) {
    if (mode_ == Mode::kTls) {
      ctx_.reset(SSL_CTX_new(TLS_server_method()));
      if (tls11_only) {
        // OpenSSL 3 allows TLS 1.1 only at security level 0.
        SSL_CTX_set_security_level(ctx_.get(), 0);
        SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_1_VERSION);
        SSL_CTX_set_max_proto_version(ctx_.get(), TLS1_1_VERSION);
      }
      if (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert.cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_.get(), cert.key.c_str(), SSL_FILETYPE_PEM) != 1)
        return Status::IOError("server certificate");
    }
    sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener_ = evconnlistener_new_bind(base_, &TestServer::AcceptCb, this,
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
                                        reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    if (!listener_) return Status::IOError("listen");
    sockaddr_in bound = {};
    socklen_t len = sizeof bound;
    getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.sin_port);
    return Status::OK();
  }
  uint16_t port() const { return port_; }
  int accepted = 0;
  int handshakes = 0;
  // Sent to each client after the handshake; the first client gets
  // first_greeting instead and is then disconnected.
  std::string greeting = "hello\n";
  std::string first_greeting;
  std::string received;

 private:
  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    ++self->accepted;
    if (self->mode_ == Mode::kSilentTcp) {
      self->silent_.push_back(fd);  // accept TCP, never answer
      return;
    }
    SSL* ssl = SSL_new(self->ctx_.get());
    bufferevent* b = bufferevent_openssl_socket_new(self->base_, fd, ssl,
                                                    BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
    self->conns_.push_back(b);
    bufferevent_setcb(b, &TestServer::ReadCb, nullptr, &TestServer::EventCb, self);
    bufferevent_enable(b, EV_READ | EV_WRITE);
  }
  static void ReadCb(bufferevent* b, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    evbuffer* in = bufferevent_get_input(b);
    size_t n = evbuffer_get_length(in);
    std::string data(n, '\0');
    evbuffer_remove(in, data.data(), n);
    self->received += data;
  }
  static void EventCb(bufferevent* b, short what, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    if (what & BEV_EVENT_CONNECTED) {
      ++self->handshakes;
      if (self->handshakes == 1 && !self->first_greeting.empty()) {
        bufferevent_write(b, self->first_greeting.data(), self->first_greeting.size());
        bufferevent_flush(b, EV_WRITE, BEV_FLUSH);
        // Drop once the bytes are out (a short timer lets the loop write).
        self->to_drop_ = b;
        timeval tv = {0, 100000};
        event_base_once(self->base_, -1, EV_TIMEOUT, &TestServer::DropCb, self, &tv);
        return;
      }
      bufferevent_write(b, self->greeting.data(), self->greeting.size());
      return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
      self->conns_.erase(std::remove(self->conns_.begin(), self->conns_.end(), b),
                         self->conns_.end());
      bufferevent_free(b);
    }
  }
  static void DropCb(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    bufferevent* b = self->to_drop_;
    self->to_drop_ = nullptr;
    auto it = std::find(self->conns_.begin(), self->conns_.end(), b);
    if (it == self->conns_.end()) return;
    self->conns_.erase(it);
    bufferevent_free(b);  // closes the socket without close_notify
  }

  event_base* base_;
  Mode mode_;
  std::unique_ptr<SSL_CTX, ServerCtxDeleter> ctx_;
  evconnlistener* listener_ = nullptr;
  std::vector<bufferevent*> conns_;
  std::vector<int> silent_;
  bufferevent* to_drop_ = nullptr;
  uint16_t port_ = 0;
};

class RemoteConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_.reset(event_base_new());
    ASSERT_TRUE(ca_.Create(dir_.path(), "test").ok());
    ASSERT_TRUE(ca_.Issue(CertSpec(), dir_.path(), "server", &good_).ok());
    TlsClientOptions t;
    t.ca_file = ca_.ca_paths().cert;
    ASSERT_TRUE(TlsClientContext::Create(t, &tls_).ok());
  }
  std::unique_ptr<RemoteConnection> Make(uint16_t port, const std::string& name = "localhost",
                                         uint64_t connect_timeout_ms = 2000) {
    RemoteOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.server_name = name;
    o.connect_timeout_ms = connect_timeout_ms;
    o.keepalive_interval_ms = 200;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 400;
    return std::make_unique<RemoteConnection>(base_.get(), tls_.get(), o, &proto_);
  }
  // Runs until the first failure is recorded and checks its text.
  void ExpectRefused(TestServer* server, RemoteConnection* c, const std::string& needle) {
    c->Start();
    ASSERT_TRUE(RunUntil(base_.get(), [&] { return !c->last_error().empty(); }));
    EXPECT_NE(c->last_error().find(needle), std::string::npos) << c->last_error();
    EXPECT_EQ(c->connects(), 0u);
    EXPECT_EQ(proto_.connected, 0);
    EXPECT_EQ(c->state(), RemoteConnection::State::kBackoff);
    // It keeps trying, with backoff, and keeps refusing.
    int before = server->accepted;
    ASSERT_TRUE(RunUntil(base_.get(), [&] { return server->accepted > before; }));
    EXPECT_EQ(proto_.connected, 0);
  }

  TempDir dir_;
  EventBasePtr base_;
  TestCa ca_;
  PemPaths good_;
  std::unique_ptr<TlsClientContext> tls_;
  LineProtocol proto_;
};

TEST_F(RemoteConnectionTest, ConnectsVerifiesAndExchangesBytes) {
  TestServer server(base_.get(), TestServer::Mode::kTls);
  ASSERT_TRUE(server.Start(good_).ok());
  auto c = Make(server.port());
  c->Start();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return !proto_.lines.empty(); })) << c->last_error();
  EXPECT_EQ(proto_.lines[0], "hello");
  EXPECT_EQ(c->state(), RemoteConnection::State::kConnected);
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return server.received == "hi\n"; }));
  // Keepalive ticks while the server keeps talking... it does not: after two
  // silent intervals the connection is declared dead and redialled.
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return proto_.keepalives >= 1; }));
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return proto_.connected >= 2; }));
  EXPECT_NE(c->last_error().find("no data from the server"), std::string::npos)
      << c->last_error();
}

TEST_F(RemoteConnectionTest, WrongCaIsRefused) {
  TestCa other;
  ASSERT_TRUE(other.Create(dir_.path(), "other").ok());
  PemPaths cert;
  ASSERT_TRUE(other.Issue(CertSpec(), dir_.path(), "other-server", &cert).ok());
  TestServer server(base_.get(), TestServer::Mode::kTls);
  ASSERT_TRUE(server.Start(cert).ok());
  auto c = Make(server.port());
  ExpectRefused(&server, c.get(), "certificate verification failed: unable to get local issuer");
}

TEST_F(RemoteConnectionTest, WrongHostNameIsRefused) {
  TestServer server(base_.get(), TestServer::Mode::kTls);
  ASSERT_TRUE(server.Start(good_).ok());
  auto c = Make(server.port(), "mobile.example.net");
  ExpectRefused(&server, c.get(), "hostname mismatch");
}

TEST_F(RemoteConnectionTest, WrongIpAddressIsRefused) {
  CertSpec spec;
  spec.ip_addresses = {"10.1.2.3"};
  PemPaths cert;
  ASSERT_TRUE(ca_.Issue(spec, dir_.path(), "ip-server", &cert).ok());
  TestServer server(base_.get(), TestServer::Mode::kTls);
  ASSERT_TRUE(server.Start(cert).ok());
  auto c = Make(server.port(), "127.0.0.1");
  ExpectRefused(&server, c.get(), "IP address mismatch");
}

TEST_F(RemoteConnectionTest, ExpiredCertificateIsRefused) {
  CertSpec spec;
  spec.not_before_s = -10 * 86400;
  spec.not_after_s = -86400;
  PemPaths cert;
  ASSERT_TRUE(ca_.Issue(spec, dir_.path(), "expired", &cert).ok());
  TestServer server(base_.get(), TestServer::Mode::kTls);
  ASSERT_TRUE(server.Start(cert).ok());
  auto c = Make(server.port());
  ExpectRefused(&server, c.get(), "certificate has expired");
}

TEST_F(RemoteConnectionTest, Tls11OnlyServerIsRefused) {
  TestServer server(base_.get(), TestServer::Mode::kTls);
  ASSERT_TRUE(server.Start(good_, /*tls11_only=*/true).ok());
  auto c = Make(server.port());
  ExpectRefused(&server, c.get(), "TLS handshake with");
  EXPECT_TRUE(c->last_error().find("protocol") != std::string::npos ||
              c->last_error().find("version") != std::string::npos)
      << c->last_error();
}

TEST_F(RemoteConnectionTest, SilentServerTimesOutAndBacksOff) {
  TestServer server(base_.get(), TestServer::Mode::kSilentTcp);
  ASSERT_TRUE(server.Start(good_).ok());
  auto c = Make(server.port(), "localhost", /*connect_timeout_ms=*/300);
  c->Start();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return !c->last_error().empty(); }));
  EXPECT_NE(c->last_error().find("did not finish within 0.3 s"), std::string::npos)
      << c->last_error();
  EXPECT_EQ(c->state(), RemoteConnection::State::kBackoff);
  uint64_t first_backoff = c->backoff_ms();
  EXPECT_GE(first_backoff, 50u);
  EXPECT_LE(first_backoff, 100u);
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return server.accepted >= 3; }));
  EXPECT_GE(c->failures(), 2u);
  EXPECT_EQ(proto_.connected, 0);
}

TEST_F(RemoteConnectionTest, DropMidMessageReconnectsAndResumes) {
  TestServer server(base_.get(), TestServer::Mode::kTls);
  server.first_greeting = "hel";  // half a line, then the TCP connection dies
  ASSERT_TRUE(server.Start(good_).ok());
  auto c = Make(server.port());
  c->Start();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return !proto_.lines.empty(); })) << c->last_error();
  EXPECT_EQ(proto_.lines, std::vector<std::string>{"hello"});  // no "helhello"
  EXPECT_EQ(proto_.connected, 2);
  EXPECT_EQ(proto_.disconnected, 1);
  EXPECT_EQ(c->connects(), 2u);
}

TEST_F(RemoteConnectionTest, RefusedConnectionIsRetried) {
  uint16_t port = testing::FreeLoopbackPort();
  auto c = Make(port);
  c->Start();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return c->failures() >= 3; }));
  EXPECT_TRUE(c->last_error().find("Connection refused") != std::string::npos ||
              c->last_error().find("connection refused") != std::string::npos)
      << c->last_error();
  c->Stop();
  EXPECT_EQ(c->state(), RemoteConnection::State::kStopped);
}

}  // namespace
}  // namespace mobilesync::agent
