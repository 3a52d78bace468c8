// TLS client contexts for the agent's outbound connections (the remote
// server, and Dovecot when imap_tls is on), with OpenSSL 3.
//
// Policy, never silently weakened: TLS 1.2 or newer; the peer's certificate
// must chain to the configured CA file (not the system store: the remote
// server is pinned to the deployment's CA) and must name the host we dialled
// (SSL_set1_host; an IP address is matched against the certificate's IP
// SANs); SNI is sent for names. A client certificate is optional.
#ifndef MOBILESYNC_SYNC_AGENT_TLS_CONTEXT_H_
#define MOBILESYNC_SYNC_AGENT_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace mobilesync::agent {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

struct TlsClientOptions {
  std::string ca_file;    // required
  std::string cert_file;  // optional client certificate (PEM chain)
  std::string key_file;   // its key; required with cert_file
};

class TlsClientContext {
 public:
  // Builds the context. On failure the Status names the file and OpenSSL's
  // reason (e.g. "tls_ca_file /x: no certificate found").
  [[nodiscard]] static Status Create(const TlsClientOptions& options,
                                     std::unique_ptr<TlsClientContext>* out);

  // A new SSL for one connection to `host` (name or IP literal), with the
  // host check and SNI set. The caller hands it to a bufferevent.
  [[nodiscard]] Status NewSsl(const std::string& host, SslPtr* out) const;

  SSL_CTX* ctx() const { return ctx_.get(); }

 private:
  SslCtxPtr ctx_;
};

// Drains OpenSSL's error queue into one line ("" if empty).
std::string DrainOpenSslErrors();

// A readable reason for a failed handshake on `ssl` (certificate
// verification result first, then `openssl_error` from the bufferevent's
// queue). Never includes key material.
std::string DescribeTlsFailure(SSL* ssl, unsigned long openssl_error);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_TLS_CONTEXT_H_
