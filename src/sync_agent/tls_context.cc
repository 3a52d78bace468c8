#include "sync_agent/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace mobilesync::agent {
namespace {

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string DescribeTlsFailure(SSL* ssl, unsigned long openssl_error) {
  std::string verify;
  if (ssl != nullptr) {
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
      verify = std::string("certificate verification failed: ") +
               X509_verify_cert_error_string(v);
    }
  }
  std::string lib;
  if (openssl_error != 0) {
    char buf[256];
    ERR_error_string_n(openssl_error, buf, sizeof buf);
    lib = buf;
  }
  if (!verify.empty() && !lib.empty()) return verify + " (" + lib + ")";
  if (!verify.empty()) return verify;
  if (!lib.empty()) return lib;
  return "TLS handshake failed";
}

Status TlsClientContext::Create(const TlsClientOptions& options,
                                std::unique_ptr<TlsClientContext>* out) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Status::IOError("SSL_CTX_new failed", DrainOpenSslErrors());
  // TLS 1.0 and 1.1 are deprecated (RFC 8996).
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1)
    return Status::IOError("cannot require TLS 1.2", DrainOpenSslErrors());
  if (options.ca_file.empty())
    return Status::InvalidArgument("TLS needs a CA file to verify the peer");
  if (SSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr) != 1)
    return Status::InvalidArgument("cannot load CA file " + options.ca_file,
                                   DrainOpenSslErrors());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!options.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), options.cert_file.c_str()) != 1)
      return Status::InvalidArgument("cannot load client certificate " + options.cert_file,
                                     DrainOpenSslErrors());
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), options.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return Status::InvalidArgument("cannot load client key " + options.key_file,
                                     DrainOpenSslErrors());
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
      return Status::InvalidArgument("client key does not match " + options.cert_file,
                                     DrainOpenSslErrors());
  }
  // Session tickets would let a resumed session skip the certificate check
  // of a re-keyed server; connections are long-lived, so resumption buys
  // little: keep every handshake a full one.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  auto c = std::make_unique<TlsClientContext>();
  c->ctx_ = std::move(ctx);
  *out = std::move(c);
  return Status::OK();
}

Status TlsClientContext::NewSsl(const std::string& host, SslPtr* out) const {
  ERR_clear_error();
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) return Status::IOError("SSL_new failed", DrainOpenSslErrors());
  // Verifying the chain alone would accept any certificate the CA ever
  // issued, for any host: the name (or IP) check is what binds it to the
  // peer we meant to reach.
  if (IsIpLiteral(host)) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
      return Status::InvalidArgument("bad IP address for the TLS check", host);
  } else {
    if (SSL_set1_host(ssl.get(), host.c_str()) != 1)
      return Status::InvalidArgument("bad host name for the TLS check", host);
    SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1)
      return Status::InvalidArgument("cannot set SNI", host);
  }
  *out = std::move(ssl);
  return Status::OK();
}

}  // namespace mobilesync::agent
