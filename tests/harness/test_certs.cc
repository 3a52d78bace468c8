#include "harness/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>

namespace mobilesync::testing {
namespace {

long NextSerial() {
  static long serial = 1000;
  return ++serial;
}

EVP_PKEY* NewKey() { return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); }

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// Builds and signs a certificate for `key`; issuer = (issuer_cert, issuer_key)
// or self when issuer_cert is null.
X509* BuildCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer_cert, EVP_PKEY* issuer_key) {
  X509* cert = X509_new();
  if (!cert) return nullptr;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), NextSerial());
  X509_gmtime_adj(X509_getm_notBefore(cert), spec.not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), spec.not_after_s);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("mobilesync tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509* issuer = issuer_cert ? issuer_cert : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(issuer));
  bool ok = true;
  if (spec.is_ca) {
    ok = AddExt(cert, issuer, NID_basic_constraints, "critical,CA:TRUE") &&
         AddExt(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    std::string san;
    for (const auto& d : spec.dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
    for (const auto& ip : spec.ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    ok = AddExt(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
         AddExt(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth") &&
         (san.empty() || AddExt(cert, issuer, NID_subject_alt_name, san));
  }
  ok = ok && AddExt(cert, issuer, NID_subject_key_identifier, "hash");
  if (issuer_cert) ok = ok && AddExt(cert, issuer, NID_authority_key_identifier, "keyid:always");
  if (!ok || X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) == 0) {
    X509_free(cert);
    return nullptr;
  }
  return cert;
}

Status WritePem(X509* cert, EVP_PKEY* key, const std::string& dir, const std::string& name,
                PemPaths* out) {
  PemPaths p{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  FILE* f = fopen(p.cert.c_str(), "w");
  if (!f) return Status::IOError("cannot write", p.cert);
  bool ok = PEM_write_X509(f, cert) == 1;
  fclose(f);
  umask(077);
  f = fopen(p.key.c_str(), "w");
  umask(022);
  if (!f) return Status::IOError("cannot write", p.key);
  ok = ok && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  fclose(f);
  chmod(p.key.c_str(), 0600);
  if (!ok) return Status::IOError("PEM write failed", name);
  if (out) *out = p;
  return Status::OK();
}

}  // namespace

TestCa::TestCa() = default;

TestCa::~TestCa() {
  X509_free(cert_);
  EVP_PKEY_free(key_);
}

Status TestCa::Create(const std::string& dir, const std::string& name) {
  key_ = NewKey();
  if (!key_) return Status::IOError("EC key generation failed");
  CertSpec spec;
  spec.common_name = name + " test CA";
  spec.is_ca = true;
  spec.dns_names.clear();
  spec.ip_addresses.clear();
  cert_ = BuildCert(spec, key_, nullptr, nullptr);
  if (!cert_) return Status::IOError("CA certificate creation failed");
  return WritePem(cert_, key_, dir, name + "-ca", &ca_paths_);
}

Status TestCa::Issue(const CertSpec& spec, const std::string& dir, const std::string& name,
                     PemPaths* out) {
  EVP_PKEY* key = NewKey();
  if (!key) return Status::IOError("EC key generation failed");
  X509* cert = BuildCert(spec, key, cert_, key_);
  Status s = cert ? WritePem(cert, key, dir, name, out)
                  : Status::IOError("certificate creation failed", name);
  X509_free(cert);
  EVP_PKEY_free(key);
  return s;
}

Status MakeSelfSigned(const CertSpec& spec, const std::string& dir, const std::string& name,
                      PemPaths* out) {
  EVP_PKEY* key = NewKey();
  if (!key) return Status::IOError("EC key generation failed");
  X509* cert = BuildCert(spec, key, nullptr, nullptr);
  Status s = cert ? WritePem(cert, key, dir, name, out)
                  : Status::IOError("certificate creation failed", name);
  X509_free(cert);
  EVP_PKEY_free(key);
  return s;
}

}  // namespace mobilesync::testing
