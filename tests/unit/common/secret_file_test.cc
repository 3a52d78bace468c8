#include "common/secret_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "harness/temp_dir.h"

namespace mobilesync {
namespace {

using testing::TempDir;
using testing::WriteFile;

TEST(SecretFile, ReadsTightFileAndStripsNewline) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Sub("s"), "hunter2-secret\n", 0600).ok());
  std::string secret;
  ASSERT_TRUE(ReadSecretFile(dir.Sub("s"), 1024, &secret).ok());
  EXPECT_EQ(secret, "hunter2-secret");
}

TEST(SecretFile, RefusesLooseModesWithoutLeakingContent) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Sub("s"), "topsecretvalue", 0644).ok());
  std::string secret;
  Status s = ReadSecretFile(dir.Sub("s"), 1024, &secret);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.IsPermissionDenied());
  EXPECT_NE(s.message().find("0644"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("topsecretvalue"), std::string::npos);
  EXPECT_TRUE(secret.empty());
  EXPECT_FALSE(CheckSecretFileMode(dir.Sub("s"), true).ok());
  ASSERT_EQ(chmod(dir.Sub("s").c_str(), 0640), 0);
  EXPECT_TRUE(CheckSecretFileMode(dir.Sub("s"), true).ok());
  EXPECT_FALSE(CheckSecretFileMode(dir.Sub("s"), false).ok());
}

TEST(SecretFile, RefusesEmptyOversizedMissingAndDirectories) {
  TempDir dir;
  std::string secret;
  ASSERT_TRUE(WriteFile(dir.Sub("empty"), "\n", 0600).ok());
  EXPECT_FALSE(ReadSecretFile(dir.Sub("empty"), 1024, &secret).ok());
  ASSERT_TRUE(WriteFile(dir.Sub("big"), std::string(2000, 'x'), 0600).ok());
  EXPECT_FALSE(ReadSecretFile(dir.Sub("big"), 1024, &secret).ok());
  EXPECT_FALSE(ReadSecretFile(dir.Sub("missing"), 1024, &secret).ok());
  EXPECT_FALSE(ReadSecretFile(dir.path(), 1024, &secret).ok());
}

}  // namespace
}  // namespace mobilesync
