#include "plugin/trigger_header.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vector>

namespace mobilesync::plugin {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}
bool IsFoldingSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsFoldingSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsFoldingSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool AllHex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    if (!IsHex(c)) return false;
  }
  return true;
}

// User names: printable ASCII without ';' and spaces (the header's syntax
// characters); Dovecot user names in practice are narrower still.
bool ValidUser(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ';') return false;
  }
  return true;
}

// Canonical decimal seconds: no sign, no leading zero, fits 64 bits.
bool ParseSeconds(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::vector<unsigned char> HmacSha256(std::string_view key, std::string_view data) {
  std::vector<unsigned char> mac(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
           &len) == nullptr) {
    return {};
  }
  mac.resize(len);
  return mac;
}

}  // namespace

Status ParseTriggerHeader(std::string_view value, TriggerHeader* out) {
  if (value.size() > kMaxTriggerHeaderLength) {
    return Status::Corruption("trigger header too long");
  }
  TriggerHeader h;
  bool have_user = false, have_ts = false, have_nonce = false, have_mac = false;
  bool first = true;
  while (true) {
    size_t semi = value.find(';');
    std::string_view part = Trim(value.substr(0, semi));
    if (first) {
      if (part != "v1") return Status::Corruption("trigger header is not v1");
      first = false;
    } else {
      size_t eq = part.find('=');
      if (eq == std::string_view::npos) return Status::Corruption("trigger field is not name=value");
      std::string_view name = part.substr(0, eq);
      std::string_view val = part.substr(eq + 1);
      bool* have = nullptr;
      bool ok = false;
      if (name == "user") {
        have = &have_user;
        ok = ValidUser(val);
        h.user = std::string(val);
      } else if (name == "ts") {
        have = &have_ts;
        ok = ParseSeconds(val, &h.ts);
        h.ts_text = std::string(val);
      } else if (name == "nonce") {
        have = &have_nonce;
        ok = AllHex(val, 32);
        h.nonce = std::string(val);
      } else if (name == "mac") {
        have = &have_mac;
        ok = AllHex(val, 64);
        h.mac_hex = std::string(val);
      } else {
        return Status::Corruption("unknown trigger field", std::string(name.substr(0, 32)));
      }
      if (*have) return Status::Corruption("duplicate trigger field", std::string(name));
      if (!ok) return Status::Corruption("bad trigger field", std::string(name));
      *have = true;
    }
    if (semi == std::string_view::npos) break;
    value.remove_prefix(semi + 1);
  }
  if (!have_user || !have_ts || !have_nonce || !have_mac) {
    return Status::Corruption("trigger header misses a field");
  }
  *out = std::move(h);
  return Status::OK();
}

std::string TriggerMacInput(std::string_view user, std::string_view ts_text,
                            std::string_view nonce) {
  std::string in = "v1\n";
  in.append(user);
  in += '\n';
  in.append(ts_text);
  in += '\n';
  in.append(nonce);
  return in;
}

std::string ComputeTriggerMac(std::string_view secret, std::string_view user,
                              std::string_view ts_text, std::string_view nonce) {
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : HmacSha256(secret, TriggerMacInput(user, ts_text, nonce))) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

std::string FormatTriggerHeader(std::string_view secret, std::string_view user, uint64_t ts,
                                std::string_view nonce) {
  std::string ts_text = std::to_string(ts);
  return "v1; user=" + std::string(user) + "; ts=" + ts_text + "; nonce=" + std::string(nonce) +
         "; mac=" + ComputeTriggerMac(secret, user, ts_text, nonce);
}

std::string_view TriggerVerdictName(TriggerVerdict v) {
  switch (v) {
    case TriggerVerdict::kValid:
      return "valid";
    case TriggerVerdict::kBadMac:
      return "bad mac";
    case TriggerVerdict::kWrongUser:
      return "for another user";
    case TriggerVerdict::kStale:
      return "stale";
  }
  return "unknown";
}

TriggerVerdict VerifyTrigger(const TriggerHeader& h, std::string_view secret,
                             std::string_view expected_user, uint64_t now_s,
                             uint64_t max_age_s) {
  if (secret.size() < kMinTriggerSecretLength || h.mac_hex.size() != 64) {
    return TriggerVerdict::kBadMac;
  }
  std::vector<unsigned char> want = HmacSha256(secret, TriggerMacInput(h.user, h.ts_text, h.nonce));
  unsigned char got[32];
  for (size_t i = 0; i < 32; ++i) {
    got[i] = static_cast<unsigned char>(HexValue(h.mac_hex[2 * i]) << 4 |
                                        HexValue(h.mac_hex[2 * i + 1]));
  }
  // Constant time: a timing difference must not tell an attacker how many
  // leading bytes of a forged MAC were right.
  if (want.size() != 32 || CRYPTO_memcmp(want.data(), got, 32) != 0) {
    return TriggerVerdict::kBadMac;
  }
  if (h.user != expected_user) return TriggerVerdict::kWrongUser;
  uint64_t age = now_s > h.ts ? now_s - h.ts : h.ts - now_s;
  if (age > max_age_s) return TriggerVerdict::kStale;
  return TriggerVerdict::kValid;
}

}  // namespace mobilesync::plugin
