// The trigger message: an e-mail that asks a user's agent to synchronise
// when no agent connection is up (the organisation's firewall lets mail in,
// not connections). The plugin recognises it at delivery by its header,
// verifies the MAC with the shared secret, hides it and pokes the agent.
//
// Header (one line; the plugin verifies exactly this format):
//   X-Mobilesync-Trigger: v1; user=<user>; ts=<unix seconds>;
//       nonce=<32 hex chars>; mac=<64 hex chars>
// mac = lower-case hex(HMAC-SHA256(secret, "v1\n<user>\n<ts>\n<nonce>")).
#ifndef MOBILESYNC_SYNC_SERVER_TRIGGER_H_
#define MOBILESYNC_SYNC_SERVER_TRIGGER_H_

#include <cstdint>
#include <string>

#include "common/status.h"

namespace mobilesync::server {

constexpr size_t kMinTriggerSecretBytes = 32;
constexpr const char* kTriggerHeader = "X-Mobilesync-Trigger";

// The header's value. REQUIRES: nonce is 32 lower-case hex characters.
std::string TriggerHeaderValue(const std::string& secret, const std::string& user, int64_t ts,
                               const std::string& nonce);

// A complete RFC 5322 trigger message to `address` with a fresh nonce.
[[nodiscard]] Status BuildTriggerMessage(const std::string& secret, const std::string& user,
                                         const std::string& from, const std::string& address,
                                         int64_t now, std::string* message);

// An RFC 5322 Date header value for `t` (UTC).
std::string RfcDate(int64_t t);

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_TRIGGER_H_
