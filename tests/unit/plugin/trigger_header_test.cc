#include "plugin/trigger_header.h"

#include <gtest/gtest.h>

namespace mobilesync::plugin {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";
const std::string kNonce = "00112233445566778899aabbccddeeff";

TEST(TriggerHeader, MacMatchesTheSpecifiedConstruction) {
  // Independent value: printf 'v1\nalice\n1700000000\n0011...eeff' |
  //   openssl dgst -sha256 -hmac '<kSecret>'
  EXPECT_EQ(TriggerMacInput("alice", "1700000000", kNonce),
            "v1\nalice\n1700000000\n" + kNonce);
  EXPECT_EQ(ComputeTriggerMac(kSecret, "alice", "1700000000", kNonce).size(), 64u);
}

TEST(TriggerHeader, ValidHeaderRoundTrips) {
  std::string v = FormatTriggerHeader(kSecret, "alice", 1700000000, kNonce);
  EXPECT_EQ(v.rfind("v1; user=alice; ts=1700000000; nonce=" + kNonce + "; mac=", 0), 0u) << v;
  TriggerHeader h;
  ASSERT_TRUE(ParseTriggerHeader(v, &h).ok());
  EXPECT_EQ(h.user, "alice");
  EXPECT_EQ(h.ts, 1700000000u);
  EXPECT_EQ(h.nonce, kNonce);
  EXPECT_EQ(VerifyTrigger(h, kSecret, "alice", 1700000100, 300), TriggerVerdict::kValid);
}

TEST(TriggerHeader, FoldedHeaderIsAccepted) {
  std::string v = FormatTriggerHeader(kSecret, "alice", 1700000000, kNonce);
  size_t p = v.find("; mac=");
  v.replace(p, 2, ";\r\n\t");
  TriggerHeader h;
  ASSERT_TRUE(ParseTriggerHeader(v, &h).ok()) << v;
  EXPECT_EQ(VerifyTrigger(h, kSecret, "alice", 1700000000, 300), TriggerVerdict::kValid);
}

TEST(TriggerHeader, UpperCaseMacIsAccepted) {
  std::string v = FormatTriggerHeader(kSecret, "alice", 1700000000, kNonce);
  size_t p = v.find("mac=") + 4;
  for (size_t i = p; i < v.size(); ++i) v[i] = static_cast<char>(toupper(v[i]));
  TriggerHeader h;
  ASSERT_TRUE(ParseTriggerHeader(v, &h).ok());
  EXPECT_EQ(VerifyTrigger(h, kSecret, "alice", 1700000000, 300), TriggerVerdict::kValid);
}

TEST(TriggerHeader, VerdictsForBadTriggers) {
  TriggerHeader h;
  ASSERT_TRUE(ParseTriggerHeader(FormatTriggerHeader(kSecret, "alice", 1700000000, kNonce), &h).ok());
  EXPECT_EQ(VerifyTrigger(h, kSecret + "x", "alice", 1700000000, 300), TriggerVerdict::kBadMac);
  EXPECT_EQ(VerifyTrigger(h, "short", "alice", 1700000000, 300), TriggerVerdict::kBadMac);
  EXPECT_EQ(VerifyTrigger(h, kSecret, "bob", 1700000000, 300), TriggerVerdict::kWrongUser);
  EXPECT_EQ(VerifyTrigger(h, kSecret, "alice", 1700000301, 300), TriggerVerdict::kStale);
  EXPECT_EQ(VerifyTrigger(h, kSecret, "alice", 1699999699, 300), TriggerVerdict::kStale);
  EXPECT_EQ(VerifyTrigger(h, kSecret, "alice", 1700000300, 300), TriggerVerdict::kValid);
  // A changed field breaks the MAC.
  TriggerHeader t = h;
  t.ts_text = "1700000001";
  t.ts = 1700000001;
  EXPECT_EQ(VerifyTrigger(t, kSecret, "alice", 1700000000, 300), TriggerVerdict::kBadMac);
  t = h;
  t.nonce[0] = '1';
  EXPECT_EQ(VerifyTrigger(t, kSecret, "alice", 1700000000, 300), TriggerVerdict::kBadMac);
  t = h;
  t.user = "bob";
  EXPECT_EQ(VerifyTrigger(t, kSecret, "bob", 1700000000, 300), TriggerVerdict::kBadMac);
}

TEST(TriggerHeader, RejectsMalformedHeaders) {
  const std::string mac(64, 'a');
  const std::string tail = "; nonce=" + kNonce + "; mac=" + mac;
  const std::string bad[] = {
      "",
      "v1",
      "v2; user=alice; ts=1" + tail,
      "user=alice; ts=1" + tail,
      "v1; user=; ts=1" + tail,
      "v1; user=al ice; ts=1" + tail,
      "v1; user=alice; ts=01" + tail,
      "v1; user=alice; ts=-1" + tail,
      "v1; user=alice; ts=1x" + tail,
      "v1; user=alice; ts=99999999999999999999" + tail,
      "v1; user=alice; ts=1; nonce=0011; mac=" + mac,
      "v1; user=alice; ts=1; nonce=" + kNonce + "; mac=" + mac.substr(1),
      "v1; user=alice; ts=1; nonce=" + std::string(32, 'g') + "; mac=" + mac,
      "v1; user=alice; ts=1" + tail + "; extra=1",
      "v1; user=alice; user=bob; ts=1" + tail,
      "v1; user=alice" + tail,
      "v1; user=alice; ts=1" + tail + ";",
      "v1; user=alice; ts" + tail,
      "v1; user=alice; ts=1" + tail + std::string(kMaxTriggerHeaderLength, ' '),
  };
  for (const auto& b : bad) {
    TriggerHeader h;
    EXPECT_FALSE(ParseTriggerHeader(b, &h).ok()) << "'" << b << "'";
  }
}

TEST(TriggerHeader, EveryTruncationIsRejected) {
  const std::string v = FormatTriggerHeader(kSecret, "alice", 1700000000, kNonce);
  for (size_t n = 0; n < v.size(); ++n) {
    TriggerHeader h;
    EXPECT_FALSE(ParseTriggerHeader(v.substr(0, n), &h).ok()) << n;
  }
}

}  // namespace
}  // namespace mobilesync::plugin
