#include "common/log.h"

#include <gtest/gtest.h>

#include "common/user_name.h"

namespace mobilesync {
namespace {

TEST(Log, EscapesControlCharactersSoOneEventIsOneLine) {
  EXPECT_EQ(EscapeForLog("a\nb\r\x01z"), "a\\x0ab\\x0d\\x01z");
  EXPECT_EQ(EscapeForLog("back\\slash"), "back\\x5cslash");
  std::string long_text(5000, 'x');
  EXPECT_LE(EscapeForLog(long_text, 100).size(), 103u);
}

TEST(Log, ParsesLevels) {
  LogLevel l = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("debug", &l).ok());
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(ParseLogLevel("verbose", &l).ok());
}

TEST(UserName, AcceptsMailAddressesAndRejectsDangerousNames) {
  EXPECT_TRUE(ValidateUserName("alice").ok());
  EXPECT_TRUE(ValidateUserName("alice@example.org").ok());
  EXPECT_FALSE(ValidateUserName("").ok());
  EXPECT_FALSE(ValidateUserName("alice*master").ok());
  EXPECT_FALSE(ValidateUserName("../etc").ok());
  EXPECT_FALSE(ValidateUserName("a b").ok());
  EXPECT_FALSE(ValidateUserName("a\nb").ok());
  EXPECT_FALSE(ValidateUserName(std::string(256, 'a')).ok());
  EXPECT_TRUE(ValidateUserName(std::string(255, 'a')).ok());
}

}  // namespace
}  // namespace mobilesync
