// The agent's wire protocol over a real TLS connection: a test server in
// this process speaks src/wire frames (HELLO -> WELCOME, SYNC_REQUEST,
// PING/PONG); a server that drops the connection in the middle of a frame
// makes the agent reconnect and resume with a fresh decoder.
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "common/event_loop.h"
#include "harness/temp_dir.h"
#include "harness/test_certs.h"
#include "sync_agent/remote_connection.h"
#include "sync_agent/wire_protocol.h"
#include "wire/frame_decoder.h"
#include "wire/frame_encoder.h"

namespace mobilesync::agent {
namespace {

using std::chrono::milliseconds;

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

std::string Encode(const wire::Frame& f) {
  std::string out;
  EXPECT_TRUE(wire::EncodeFrame(f, &out).ok());
  return out;
}

// A wire server: answers HELLO with WELCOME, then sends what the test asks.
class WireServer {
 public:
  explicit WireServer(event_base* base) : base_(base) {}
  ~WireServer() {
    for (auto& c : conns_) bufferevent_free(c.bev);
    if (listener_) evconnlistener_free(listener_);
    if (ctx_) SSL_CTX_free(ctx_);
  }
  Status Start(const testing::PemPaths& cert) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx_, cert.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, cert.key.c_str(), SSL_FILETYPE_PEM) != 1)
      return Status::IOError("server certificate");
    sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener_ = evconnlistener_new_bind(base_, &WireServer::AcceptCb, this,
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
  void SendAll(const std::string& bytes) {
    for (auto& c : conns_) bufferevent_write(c.bev, bytes.data(), bytes.size());
  }

  int hellos = 0;
  int pongs = 0;
  uint64_t last_pong_nonce = 0;
  int pings_seen = 0;
  // First connection: after HELLO, send only this prefix of a WELCOME and
  // drop the connection.
  bool cut_first_welcome = false;

 private:
  struct Conn {
    bufferevent* bev;
    std::shared_ptr<wire::FrameDecoder> dec;
  };
  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* self = static_cast<WireServer*>(arg);
    bufferevent* b = bufferevent_openssl_socket_new(self->base_, fd, SSL_new(self->ctx_),
                                                    BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
    self->conns_.push_back({b, std::make_shared<wire::FrameDecoder>()});
    bufferevent_setcb(b, &WireServer::ReadCb, nullptr, &WireServer::EventCb, self);
    bufferevent_enable(b, EV_READ | EV_WRITE);
  }
  static void ReadCb(bufferevent* b, void* arg) {
    auto* self = static_cast<WireServer*>(arg);
    Conn* c = nullptr;
    for (auto& x : self->conns_)
      if (x.bev == b) c = &x;
    if (!c) return;
    evbuffer* in = bufferevent_get_input(b);
    std::string data(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, data.data(), data.size());
    std::string_view v(data);
    while (!v.empty()) {
      wire::Frame f;
      wire::FrameDecoder::Result res;
      if (!c->dec->Next(&v, &f, &res).ok()) return;
      if (res == wire::FrameDecoder::Result::kNeedMore) break;
      if (f.As<wire::pb::Hello>()) {
        ++self->hellos;
        wire::pb::Welcome w;
        w.set_version(wire::kProtocolVersion);
        w.set_server_name("test-server");
        w.set_window(8);
        w.set_max_message_bytes(1 << 20);
        std::string bytes = Encode(wire::MakeFrame(0, std::move(w)));
        if (self->cut_first_welcome && self->hellos == 1) {
          bufferevent_write(b, bytes.data(), bytes.size() / 2);
          self->to_drop_ = b;
          timeval tv = {0, 100000};
          event_base_once(self->base_, -1, EV_TIMEOUT, &WireServer::DropCb, self, &tv);
          return;
        }
        bufferevent_write(b, bytes.data(), bytes.size());
      } else if (const auto* p = f.As<wire::pb::Pong>()) {
        ++self->pongs;
        self->last_pong_nonce = p->nonce();
      } else if (const auto* p = f.As<wire::pb::Ping>()) {
        ++self->pings_seen;
        wire::pb::Pong pong;
        pong.set_nonce(p->nonce());
        std::string bytes = Encode(wire::MakeFrame(0, std::move(pong)));
        bufferevent_write(b, bytes.data(), bytes.size());
      }
    }
  }
  static void EventCb(bufferevent* b, short what, void* arg) {
    auto* self = static_cast<WireServer*>(arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) self->Drop(b);
  }
  static void DropCb(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<WireServer*>(arg);
    if (self->to_drop_) self->Drop(self->to_drop_);
    self->to_drop_ = nullptr;
  }
  void Drop(bufferevent* b) {
    for (auto it = conns_.begin(); it != conns_.end(); ++it) {
      if (it->bev == b) {
        bufferevent_free(b);
        conns_.erase(it);
        return;
      }
    }
  }

  event_base* base_;
  SSL_CTX* ctx_ = nullptr;
  evconnlistener* listener_ = nullptr;
  std::vector<Conn> conns_;
  bufferevent* to_drop_ = nullptr;
  uint16_t port_ = 0;
};

class WireConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_.reset(event_base_new());
    ASSERT_TRUE(ca_.Create(dir_.path(), "wire").ok());
    ASSERT_TRUE(ca_.Issue(testing::CertSpec(), dir_.path(), "server", &cert_).ok());
    TlsClientOptions t;
    t.ca_file = ca_.ca_paths().cert;
    ASSERT_TRUE(TlsClientContext::Create(t, &tls_).ok());
  }
  std::unique_ptr<RemoteConnection> Make(uint16_t port) {
    RemoteOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.server_name = "localhost";
    o.keepalive_interval_ms = 200;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 400;
    return std::make_unique<RemoteConnection>(base_.get(), tls_.get(), o, proto_.get());
  }
  testing::TempDir dir_;
  EventBasePtr base_;
  testing::TestCa ca_;
  testing::PemPaths cert_;
  std::unique_ptr<TlsClientContext> tls_;
  std::vector<std::string> requested_;
  std::unique_ptr<WireProtocol> proto_ = std::make_unique<WireProtocol>(
      WireProtocol::Options(), [this](const std::string& u) { requested_.push_back(u); });
};

TEST_F(WireConnectionTest, HandshakeSyncRequestAndKeepalive) {
  WireServer server(base_.get());
  ASSERT_TRUE(server.Start(cert_).ok());
  auto c = Make(server.port());
  c->Start();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return proto_->handshake_done(); })) << c->last_error();
  EXPECT_EQ(proto_->server_name(), "test-server");
  // The server asks for a sync of alice: it reaches the callback.
  wire::pb::SyncRequest req;
  req.set_user("alice");
  req.set_reason(wire::pb::SYNC_REASON_REMOTE_CHANGE);
  server.SendAll(Encode(wire::MakeFrame(0, std::move(req))));
  // A server ping is answered with the same nonce.
  wire::pb::Ping ping;
  ping.set_nonce(77);
  server.SendAll(Encode(wire::MakeFrame(0, std::move(ping))));
  ASSERT_TRUE(RunUntil(base_.get(), [&] {
    return requested_.size() == 1 && server.last_pong_nonce == 77;
  }));
  EXPECT_EQ(requested_[0], "alice");
  // The agent pings on its own and the server's pongs keep it alive across
  // several keepalive intervals (no reconnect).
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return proto_->pongs() >= 4; }));
  EXPECT_EQ(c->connects(), 1u);
  EXPECT_EQ(server.hellos, 1);
}

TEST_F(WireConnectionTest, DropMidFrameReconnectsAndResumes) {
  WireServer server(base_.get());
  server.cut_first_welcome = true;
  ASSERT_TRUE(server.Start(cert_).ok());
  auto c = Make(server.port());
  c->Start();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return proto_->handshake_done(); })) << c->last_error();
  EXPECT_EQ(server.hellos, 2);
  EXPECT_EQ(c->connects(), 2u);
  EXPECT_NE(c->last_error().find("server closed the connection"), std::string::npos)
      << c->last_error();
}

TEST_F(WireConnectionTest, GarbageFromTheServerClosesTheConnection) {
  WireServer server(base_.get());
  ASSERT_TRUE(server.Start(cert_).ok());
  auto c = Make(server.port());
  c->Start();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return proto_->handshake_done(); }));
  server.SendAll(std::string(16, '\xff'));  // a header no decoder accepts
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return c->connects() >= 2 && proto_->handshake_done(); }));
  EXPECT_FALSE(c->last_error().empty());
}

}  // namespace
}  // namespace mobilesync::agent
