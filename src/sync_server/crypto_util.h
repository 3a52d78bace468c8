// Small OpenSSL-backed helpers: digests, HMAC, random hex, constant-time
// comparison. Nothing here logs.
#ifndef MOBILESYNC_SYNC_SERVER_CRYPTO_UTIL_H_
#define MOBILESYNC_SYNC_SERVER_CRYPTO_UTIL_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace mobilesync::server {

// Lower-case hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);
// Lower-case hex of HMAC-SHA256(key, data).
std::string HmacSha256Hex(std::string_view key, std::string_view data);
// `bytes` random bytes (RAND_bytes) as 2*bytes lower-case hex characters.
[[nodiscard]] Status RandomHex(size_t bytes, std::string* out);
// Equality in time independent of where the strings differ (for secrets).
bool ConstantTimeEquals(std::string_view a, std::string_view b);
bool IsLowerHex(std::string_view s, size_t length);

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_CRYPTO_UTIL_H_
