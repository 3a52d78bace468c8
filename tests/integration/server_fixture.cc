#include "integration/server_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "sync_server/crypto_util.h"
#include "wire/frame_encoder.h"

namespace mobilesync::testing {

namespace pb = wire::pb;

ServerFixture::~ServerFixture() {
  if (server_.running()) server_.Stop(milliseconds(5000));
  if (sink_.running()) sink_.Stop(milliseconds(5000));
}

Status ServerFixture::Start(const ServerOptions& o) {
  Status s = ca_.Create(tmp_.path(), "test");
  CertSpec server_spec;
  if (s.ok()) s = ca_.Issue(server_spec, tmp_.path(), "server", &server_cert_);
  CertSpec agent_spec;
  agent_spec.common_name = "agent.corp.example";
  agent_spec.dns_names = {"agent.corp.example"};
  agent_spec.ip_addresses = {};
  if (s.ok()) s = ca_.Issue(agent_spec, tmp_.path(), "agent", &agent_cert_);
  CertSpec stranger_spec = agent_spec;
  stranger_spec.common_name = "stranger.example";
  if (s.ok()) s = MakeSelfSigned(stranger_spec, tmp_.path(), "stranger", &stranger_cert_);
  if (!s.ok()) return s;
  agent_port_ = FreeLoopbackPort();
  api_port_ = FreeLoopbackPort();
  smtp_port_ = FreeLoopbackPort();
  // corp: token, alice + carol. certonly: client certificate, alice only.
  std::string agents =
      "# test agents\n"
      "corp      token_sha256=" + server::Sha256Hex(kAgentToken) + "  users=alice,carol\n"
      "certonly  cert_cn=agent.corp.example  users=alice\n";
  std::string devices =
      "alice  token_sha256=" + server::Sha256Hex(kAliceToken) +
      "  address=alice@example.test  window=" + std::to_string(o.alice_window) + "\n" +
      "bob    token_sha256=" + server::Sha256Hex(kBobToken) + "  address=bob@example.test\n";
  if (s.ok()) s = WriteFile(tmp_.Sub("agents"), agents, 0600);
  if (s.ok()) s = WriteFile(tmp_.Sub("devices"), devices, 0600);
  if (s.ok()) s = WriteFile(tmp_.Sub("trigger.secret"), kTriggerSecret + "\n", 0600);
  if (s.ok()) s = WriteFile(alice_token_file(), kAliceToken + "\n", 0600);
  std::string conf =
      "listen = 127.0.0.1:" + std::to_string(agent_port_) + "\n" +
      "tls_cert_file = " + server_cert_.cert + "\n" +
      "tls_key_file = " + server_cert_.key + "\n" +
      "tls_client_ca_file = " + ca_.ca_paths().cert + "\n" +
      "agents_file = " + tmp_.Sub("agents") + "\n" +
      "database = " + database() + "\n" +
      "default_window = 10\n" +
      "device_api_listen = 127.0.0.1:" + std::to_string(api_port_) + "\n" +
      "devices_file = " + tmp_.Sub("devices") + "\n" +
      "smtp = 127.0.0.1:" + std::to_string(smtp_port_) + "\n" +
      "trigger_from = mobilesync@remote.example\n" +
      "log_level = debug\n" +
      (o.trigger ? "trigger_secret_file = " + tmp_.Sub("trigger.secret") + "\n" : "");
  if (s.ok()) s = WriteFile(config_path(), conf, 0644);
  if (s.ok() && o.smtp_sink) {
    // Debian's python3-aiosmtpd lives in /usr/bin/python3's path.
    s = sink_.Start({"/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l",
                     "127.0.0.1:" + std::to_string(smtp_port_), "-c", "aiosmtpd.handlers.Mailbox",
                     tmp_.Sub("maildir")},
                    tmp_.Sub("smtp.log"));
    if (s.ok() && !WaitFor([&] {
          LineSocket probe;
          return probe.Connect("127.0.0.1", smtp_port_, 1000).ok();
        })) {
      s = Status::Unavailable("SMTP sink did not start");
    }
  }
  if (s.ok()) s = StartServer();
  return s;
}

Status ServerFixture::StartServer() {
  std::string log = tmp_.Sub("server.log");
  // The log is appended to across restarts: only what this start wrote counts.
  const size_t offset = ServerLog().size();
  Status s = server_.Start({BuildDir() + "/src/sync_server/mobilesync-server", "-c", config_path(), "-F"},
                           log);
  if (!s.ok()) return s;
  if (!WaitFor([&] {
        std::string text = ServerLog();
        return !server_.running() || text.find("started (listen", offset) != std::string::npos;
      })) {
    return Status::Timeout("server did not start", ServerLog());
  }
  if (!server_.running()) return Status::Unavailable("server exited", ServerLog());
  return Status::OK();
}

void ServerFixture::Kill() {
  server_.Signal(SIGKILL);
  server_.Wait(milliseconds(10000));
}

int ServerFixture::Stop() { return server_.Stop(milliseconds(10000)); }

std::string ServerFixture::ServerLog() const {
  std::string text;
  (void)ReadFile(tmp_.Sub("server.log"), &text);
  return text;
}

bool ServerFixture::WaitForLog(const std::string& needle, milliseconds timeout) const {
  return WaitFor([&] { return ServerLog().find(needle) != std::string::npos; }, timeout);
}

Status ServerFixture::Api(const std::string& method, const std::string& path,
                          const std::string& body, server::HttpResponse* out,
                          const std::string& token) const {
  return server::HttpCall("127.0.0.1", api_port_, method, path, token, body, out, 20000);
}

uint64_t ServerFixture::Inject(const std::string& subject, int64_t date, const std::string& token) {
  nlohmann::json j{{"message", "From: someone@example.net\r\nTo: alice@example.test\r\nSubject: " +
                                   subject + "\r\nMessage-ID: <" + subject +
                                   "@example.net>\r\n\r\nBody of " + subject + "\r\n"},
                   {"date", date}};
  server::HttpResponse r;
  Status s = Api("POST", "/v1/messages", j.dump(), &r, token);
  if (!s.ok() || r.status != 201) return 0;
  return nlohmann::json::parse(r.body).value("id", 0ull);
}

std::vector<std::string> ServerFixture::SinkMessages() const {
  std::vector<std::string> out;
  for (const char* sub : {"/maildir/new", "/maildir/cur"}) {
    std::string d = tmp_.path() + sub;
    DIR* dir = opendir(d.c_str());
    if (!dir) continue;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::string text;
      if (ReadFile(d + "/" + e->d_name, &text).ok()) out.push_back(text);
    }
    closedir(dir);
  }
  return out;
}

// --------------------------------------------------------------------------

TlsProtocolClient::~TlsProtocolClient() { Close(); }

void TlsProtocolClient::Close() {
  if (ssl_) SSL_free(ssl_);
  if (ctx_) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
  ssl_ = nullptr;
  ctx_ = nullptr;
  fd_ = -1;
}

Status TlsProtocolClient::Connect(uint16_t port, const std::string& ca_file, const PemPaths& client) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status::FromErrno("connect", errno);
  }
  ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
    return Status::IOError("load CA");
  }
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  if (!client.cert.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx_, client.cert.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx_, client.key.c_str(), SSL_FILETYPE_PEM) != 1)) {
    return Status::IOError("load client certificate");
  }
  ssl_ = SSL_new(ctx_);
  SSL_set_fd(ssl_, fd_);
  SSL_set_tlsext_host_name(ssl_, "localhost");
  SSL_set1_host(ssl_, "localhost");
  if (SSL_connect(ssl_) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    return Status::Unavailable("TLS handshake failed", buf);
  }
  return Status::OK();
}

Status TlsProtocolClient::SendRaw(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    int n = SSL_write(ssl_, bytes.data() + off, static_cast<int>(bytes.size() - off));
    if (n <= 0) return Status::IOError("SSL_write failed");
    off += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status TlsProtocolClient::Send(const wire::Frame& frame) {
  std::string out;
  Status s = wire::EncodeFrame(frame, &out);
  if (!s.ok()) return s;
  return SendRaw(out);
}

Status TlsProtocolClient::Read(wire::Frame* frame, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  wire::FrameDecoder::Result result;
  for (;;) {
    // Bytes already read may hold the next frame (several frames can share
    // one TLS record).
    std::string_view in(pending_);
    Status s = decoder_.Next(&in, frame, &result);
    pending_.erase(0, pending_.size() - in.size());
    if (!s.ok()) return s;
    if (result == wire::FrameDecoder::Result::kFrame) return Status::OK();
    if (SSL_pending(ssl_) == 0) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Status::Timeout("no frame");
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) == 0) return Status::Timeout("no frame");
    }
    char buf[16384];
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) return Status::Unavailable("connection closed");
    pending_.append(buf, static_cast<size_t>(n));
  }
}

Status TlsProtocolClient::Hello(const std::string& token, uint32_t window, wire::Frame* reply) {
  pb::Hello h;
  h.set_min_version(1);
  h.set_max_version(1);
  h.set_agent_name("test-agent");
  h.set_deployment_token(token);
  h.set_max_window(window);
  h.set_max_message_bytes(1 << 20);
  h.add_capabilities("deliver");
  h.add_capabilities("filed-as-sent");
  h.add_capabilities("trigger-mail");
  Status s = Send(wire::MakeFrame(0, h));
  wire::Frame f;
  if (s.ok()) s = Read(&f);
  if (!s.ok()) return s;
  if (reply) *reply = f;
  if (f.As<pb::Welcome>() == nullptr) return Status::PermissionDenied("no WELCOME", wire::DescribeFrame(f));
  return Status::OK();
}

wire::Frame BeginSession(uint32_t session, const std::string& user, uint64_t generation) {
  pb::BeginSession b;
  b.set_user(user);
  b.set_agent_generation(generation);
  return wire::MakeFrame(session, b);
}

wire::Frame InsertAction(uint32_t session, uint64_t seq, const std::string& key, int64_t date,
                         const std::string& subject) {
  pb::Action a;
  a.set_seq(seq);
  a.set_kind(pb::ACTION_KIND_INSERT);
  a.set_insert_key(key);
  a.set_date(date);
  a.set_state(pb::MESSAGE_STATE_UNREAD);
  a.set_message_id("<" + key + "@corp.example>");
  std::string body = "From: boss@corp.example\r\nSubject: " + subject + "\r\nMessage-ID: <" + key +
                     "@corp.example>\r\n\r\nbody " + subject + "\r\n";
  return wire::MakeFrame(session, a, body);
}

wire::Frame StateAction(uint32_t session, uint64_t seq, int kind, const std::string& remote_id) {
  pb::Action a;
  a.set_seq(seq);
  a.set_kind(static_cast<pb::ActionKind>(kind));
  a.set_remote_id(remote_id);
  return wire::MakeFrame(session, a);
}

wire::Frame AckFrame(uint32_t session, uint64_t seq) {
  pb::Ack a;
  a.set_first_seq(seq);
  a.set_last_seq(seq);
  return wire::MakeFrame(session, a);
}

wire::Frame EndSessionOk(uint32_t session) {
  pb::EndSession e;
  e.set_outcome(pb::SESSION_OUTCOME_OK);
  return wire::MakeFrame(session, e);
}

}  // namespace mobilesync::testing
