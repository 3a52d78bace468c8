// A running mobilesync-server for integration tests: certificates from a
// test CA, provisioning files, a trigger secret, an SMTP sink (aiosmtpd,
// a real SMTP server process on loopback writing a Maildir), and a small
// blocking TLS client that speaks the sync protocol frame by frame.
#ifndef MOBILESYNC_TESTS_INTEGRATION_SERVER_FIXTURE_H_
#define MOBILESYNC_TESTS_INTEGRATION_SERVER_FIXTURE_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "harness/dovecot_instance.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "harness/test_certs.h"
#include "sync_server/device_client.h"
#include "wire/frame.h"
#include "wire/frame_decoder.h"

namespace mobilesync::testing {

// Tokens the fixture provisions (plain text; the files hold their hashes).
inline const std::string kAliceToken = "alice-device-token-0123456789";
inline const std::string kBobToken = "bob-device-token-9876543210";
inline const std::string kAgentToken = "corp-agent-deployment-token";
inline const std::string kTriggerSecret = "0123456789abcdef0123456789abcdef-shared";

struct ServerOptions {
  uint32_t alice_window = 6;
  bool smtp_sink = true;
  bool trigger = true;
};

class ServerFixture {
 public:
  ServerFixture() = default;
  ~ServerFixture();

  [[nodiscard]] Status Start(const ServerOptions& options = {});
  // Starts the server again on the same files and ports (after Kill()).
  [[nodiscard]] Status StartServer();
  void Kill();  // SIGKILL, reaped
  int Stop();   // SIGTERM; exit code

  std::string ServerLog() const;
  bool WaitForLog(const std::string& needle, milliseconds timeout = milliseconds(10000)) const;

  // Device API call as `token`'s device.
  [[nodiscard]] Status Api(const std::string& method, const std::string& path,
                           const std::string& body, server::HttpResponse* out,
                           const std::string& token = kAliceToken) const;
  // Injects a message into alice's window (new mail on the mobile side).
  uint64_t Inject(const std::string& subject, int64_t date, const std::string& token = kAliceToken);

  // Files of the SMTP sink's Maildir (whole messages).
  std::vector<std::string> SinkMessages() const;

  const std::string& dir() const { return tmp_.path(); }
  uint16_t agent_port() const { return agent_port_; }
  uint16_t api_port() const { return api_port_; }
  std::string api() const { return "127.0.0.1:" + std::to_string(api_port_); }
  const std::string& ca_cert() const { return ca_.ca_paths().cert; }
  const PemPaths& agent_cert() const { return agent_cert_; }
  const PemPaths& stranger_cert() const { return stranger_cert_; }
  // Issues another certificate from the server's own client CA (e.g. an
  // expired one) into the fixture's directory as <name>.crt/.key.
  [[nodiscard]] Status IssueClientCert(const CertSpec& spec, const std::string& name,
                                       PemPaths* out) {
    return ca_.Issue(spec, tmp_.path(), name, out);
  }
  std::string config_path() const { return tmp_.Sub("server.conf"); }
  std::string database() const { return tmp_.Sub("store.db"); }
  std::string alice_token_file() const { return tmp_.Sub("alice.token"); }

 private:
  TempDir tmp_;
  TestCa ca_;
  PemPaths server_cert_, agent_cert_, stranger_cert_;
  Process server_;
  Process sink_;
  uint16_t agent_port_ = 0, api_port_ = 0, smtp_port_ = 0;
};

// A blocking TLS client speaking the sync protocol, for conformance tests.
class TlsProtocolClient {
 public:
  TlsProtocolClient() = default;
  ~TlsProtocolClient();
  TlsProtocolClient(const TlsProtocolClient&) = delete;
  TlsProtocolClient& operator=(const TlsProtocolClient&) = delete;

  // Connects and completes the TLS handshake (verifying the server against
  // `ca_file`); presents `client` when its paths are set.
  [[nodiscard]] Status Connect(uint16_t port, const std::string& ca_file,
                               const PemPaths& client = {});
  [[nodiscard]] Status Send(const wire::Frame& frame);
  // Writes raw bytes (for malformed-frame tests).
  [[nodiscard]] Status SendRaw(const std::string& bytes);
  // Reads the next frame (Timeout after `timeout`; Unavailable on EOF).
  [[nodiscard]] Status Read(wire::Frame* frame, milliseconds timeout = milliseconds(10000));
  // HELLO with `token`; expects WELCOME.
  [[nodiscard]] Status Hello(const std::string& token, uint32_t window = 8,
                             wire::Frame* reply = nullptr);
  void Close();

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  wire::FrameDecoder decoder_;
  std::string pending_;  // read from TLS, not yet decoded
};

// Frame builders for the tests.
wire::Frame BeginSession(uint32_t session, const std::string& user, uint64_t generation);
wire::Frame InsertAction(uint32_t session, uint64_t seq, const std::string& key, int64_t date,
                         const std::string& subject);
wire::Frame StateAction(uint32_t session, uint64_t seq, int kind, const std::string& remote_id);
wire::Frame AckFrame(uint32_t session, uint64_t seq);
wire::Frame EndSessionOk(uint32_t session);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_INTEGRATION_SERVER_FIXTURE_H_
