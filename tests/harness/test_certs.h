// Certificates made by the tests themselves, with OpenSSL: a CA, server and
// client certificates it signs, self-signed and expired ones. Keys are
// ECDSA P-256 (fast to generate) and written with mode 0600.
#ifndef MOBILESYNC_TESTS_HARNESS_TEST_CERTS_H_
#define MOBILESYNC_TESTS_HARNESS_TEST_CERTS_H_

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace mobilesync::testing {

struct CertSpec {
  std::string common_name = "localhost";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1"};
  // Validity relative to now, in seconds (negative = in the past).
  long not_before_s = -3600;
  long not_after_s = 30L * 86400;
  bool is_ca = false;
};

struct PemPaths {
  std::string cert;
  std::string key;
};

class TestCa {
 public:
  TestCa();
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  // Creates a CA key and self-signed CA certificate; writes them to `dir`
  // as <name>-ca.crt / <name>-ca.key.
  [[nodiscard]] Status Create(const std::string& dir, const std::string& name);
  const PemPaths& ca_paths() const { return ca_paths_; }

  // Issues a certificate signed by this CA into <dir>/<name>.crt/.key.
  [[nodiscard]] Status Issue(const CertSpec& spec, const std::string& dir,
                             const std::string& name, PemPaths* out);

 private:
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
  PemPaths ca_paths_;
};

// A self-signed certificate (its own issuer) into <dir>/<name>.crt/.key.
[[nodiscard]] Status MakeSelfSigned(const CertSpec& spec, const std::string& dir,
                                    const std::string& name, PemPaths* out);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_TEST_CERTS_H_
