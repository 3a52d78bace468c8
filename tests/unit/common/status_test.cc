#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace mobilesync {
namespace {

TEST(Status, OkHasNoMessage) {
  Status s = Status::OK();
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s.message(), "");
}

TEST(Status, CarriesCodeAndTwoPartMessage) {
  Status s = Status::Corruption("frame too long", "peer 10.0.0.1");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_FALSE(s.IsNotFound());
  EXPECT_EQ(s.message(), "frame too long: peer 10.0.0.1");
  EXPECT_EQ(s.ToString(), "Corruption: frame too long: peer 10.0.0.1");
}

TEST(Status, CopyIsDeepAndMoveLeavesSourceUsable) {
  Status a = Status::Timeout("no ack");
  Status b = a;
  EXPECT_TRUE(b.IsTimeout());
  a = Status::OK();
  EXPECT_TRUE(b.IsTimeout());
  Status c = std::move(b);
  EXPECT_TRUE(c.IsTimeout());
}

TEST(Status, FromErrnoNamesTheCall) {
  Status s = Status::FromErrno("open /x", ENOENT);
  EXPECT_TRUE(s.IsIOError());
  EXPECT_NE(s.message().find("open /x: No such file"), std::string::npos);
}

}  // namespace
}  // namespace mobilesync
