// The trigger header: how the remote server asks for a sync by mail.
//
//   X-Mobilesync-Trigger: v1; user=<user>; ts=<unix seconds>;
//       nonce=<32 hex chars>; mac=<64 hex chars>
//
// mac = lower-case hex(HMAC-SHA256(secret, "v1\n<user>\n<ts>\n<nonce>")),
// over the fields exactly as written in the header. Full specification:
// docs/attributes.md, section "Trigger header". Pure C++ plus OpenSSL's
// libcrypto (no Dovecot headers), so the agent and server can reuse it.
#ifndef MOBILESYNC_PLUGIN_TRIGGER_HEADER_H_
#define MOBILESYNC_PLUGIN_TRIGGER_HEADER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mobilesync::plugin {

inline constexpr std::string_view kTriggerHeaderName = "X-Mobilesync-Trigger";
// A header value longer than this is malformed (before unfolding).
inline constexpr size_t kMaxTriggerHeaderLength = 1024;
// The shared secret must be at least this long (bytes).
inline constexpr size_t kMinTriggerSecretLength = 32;

struct TriggerHeader {
  std::string user;
  uint64_t ts = 0;
  std::string ts_text;  // as written (the MAC covers the text)
  std::string nonce;    // 32 hex digits as written
  std::string mac_hex;  // 64 hex digits as written
};

// Parses a header value (folding whitespace allowed around ';'). Fields must
// be v1 first, then user, ts, nonce and mac, each exactly once, in any
// order; anything else is Corruption. Never reads past `value`.
[[nodiscard]] Status ParseTriggerHeader(std::string_view value, TriggerHeader* out);

// The MAC input, "v1\n<user>\n<ts>\n<nonce>".
std::string TriggerMacInput(std::string_view user, std::string_view ts_text,
                            std::string_view nonce);
// Lower-case hex of HMAC-SHA256(secret, TriggerMacInput(...)).
std::string ComputeTriggerMac(std::string_view secret, std::string_view user,
                              std::string_view ts_text, std::string_view nonce);
// A complete header value for `user` (used by tests and the reference server).
std::string FormatTriggerHeader(std::string_view secret, std::string_view user, uint64_t ts,
                                std::string_view nonce);

enum class TriggerVerdict {
  kValid,
  kBadMac,     // MAC does not match (or the secret is too short)
  kWrongUser,  // MAC fine but for another user
  kStale,      // |now - ts| > max_age
};
std::string_view TriggerVerdictName(TriggerVerdict v);

// Checks a parsed header: MAC first (constant-time), then user, then age.
// Replay and rate limits are the caller's (they need durable state).
TriggerVerdict VerifyTrigger(const TriggerHeader& header, std::string_view secret,
                             std::string_view expected_user, uint64_t now_s,
                             uint64_t max_age_s);

}  // namespace mobilesync::plugin

#endif  // MOBILESYNC_PLUGIN_TRIGGER_HEADER_H_
