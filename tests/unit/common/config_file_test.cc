#include "common/config_file.h"

#include <gtest/gtest.h>

namespace mobilesync {
namespace {

ConfigFile MustParse(const std::string& text) {
  ConfigFile f;
  Status s = ConfigFile::Parse(text, "test.conf", &f);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return f;
}

Status ParseError(const std::string& text) {
  ConfigFile f;
  return ConfigFile::Parse(text, "test.conf", &f);
}

TEST(ConfigFile, ParsesKeysValuesCommentsAndQuotes) {
  ConfigFile f = MustParse(
      "# comment\n\n  server = mail.example.org:4433  \n"
      "name = \"  spaced # not a comment \"\n"
      "level = info # trailing comment\n");
  std::string v;
  ASSERT_TRUE(f.GetString("name", &v).ok());
  EXPECT_EQ(v, "  spaced # not a comment ");
  ASSERT_TRUE(f.GetString("level", &v).ok());
  EXPECT_EQ(v, "info");
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(f.GetHostPort("server", &host, &port).ok());
  EXPECT_EQ(host, "mail.example.org");
  EXPECT_EQ(port, 4433);
  EXPECT_TRUE(f.CheckAllUsed().ok());
}

TEST(ConfigFile, ErrorsNameFileAndLine) {
  Status s = ParseError("a = 1\nthis line has no equals sign\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("test.conf:2"), std::string::npos) << s.message();
}

TEST(ConfigFile, RejectsDuplicateKeys) {
  Status s = ParseError("a = 1\na = 2\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("already set on line 1"), std::string::npos) << s.message();
}

TEST(ConfigFile, RejectsBadKeysLongLinesAndNul) {
  EXPECT_FALSE(ParseError("Bad-Key = 1\n").ok());
  EXPECT_FALSE(ParseError("a = " + std::string(5000, 'x') + "\n").ok());
  EXPECT_FALSE(ParseError(std::string("a = b\0c\n", 8)).ok());
  EXPECT_FALSE(ParseError("a = \"unterminated\n").ok());
}

TEST(ConfigFile, UnknownKeyIsReported) {
  ConfigFile f = MustParse("sync_intervall = 5m\n");
  Status s = f.CheckAllUsed();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown setting 'sync_intervall'"), std::string::npos);
  EXPECT_NE(s.message().find("test.conf:1"), std::string::npos);
}

TEST(ConfigFile, UintRangeAndSyntax) {
  ConfigFile f = MustParse("a = 10\nb = -1\nc = 99999999999999999999999\nd = 7x\ne = 2000\n");
  uint64_t v = 0;
  EXPECT_TRUE(f.GetUint("a", 1, 100, &v).ok());
  EXPECT_EQ(v, 10u);
  EXPECT_FALSE(f.GetUint("b", 0, 100, &v).ok());
  EXPECT_FALSE(f.GetUint("c", 0, UINT64_MAX, &v).ok());
  EXPECT_FALSE(f.GetUint("d", 0, 100, &v).ok());
  Status s = f.GetUint("e", 1, 1024, &v);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("from 1 to 1024"), std::string::npos);
  EXPECT_EQ(v, 10u) << "a failed getter must leave the value alone";
}

TEST(ConfigFile, DurationsWithUnits) {
  ConfigFile f = MustParse("a = 500ms\nb = 30\nc = 5m\nd = 2h\ne = 3 days\nf = 1ms\n");
  uint64_t ms = 0;
  ASSERT_TRUE(f.GetDuration("a", 0, UINT64_MAX, &ms).ok());
  EXPECT_EQ(ms, 500u);
  ASSERT_TRUE(f.GetDuration("b", 0, UINT64_MAX, &ms).ok());
  EXPECT_EQ(ms, 30000u);
  ASSERT_TRUE(f.GetDuration("c", 0, UINT64_MAX, &ms).ok());
  EXPECT_EQ(ms, 300000u);
  ASSERT_TRUE(f.GetDuration("d", 0, UINT64_MAX, &ms).ok());
  EXPECT_EQ(ms, 7200000u);
  EXPECT_FALSE(f.GetDuration("e", 0, UINT64_MAX, &ms).ok());
  EXPECT_FALSE(f.GetDuration("f", 100, 1000, &ms).ok());
}

TEST(ConfigFile, BoolsAndHostPorts) {
  ConfigFile f = MustParse("a = yes\nb = maybe\nc = [::1]:993\nd = host\ne = host:0\n");
  bool b = false;
  EXPECT_TRUE(f.GetBool("a", &b).ok());
  EXPECT_TRUE(b);
  EXPECT_FALSE(f.GetBool("b", &b).ok());
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(f.GetHostPort("c", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 993);
  EXPECT_FALSE(f.GetHostPort("d", &host, &port).ok());
  EXPECT_FALSE(f.GetHostPort("e", &host, &port).ok());
}

TEST(ConfigFile, MissingFileAndRequiredKey) {
  ConfigFile f;
  Status s = ConfigFile::Load("/nonexistent/agent.conf", &f);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/agent.conf"), std::string::npos);
  ConfigFile g = MustParse("a = 1\n");
  EXPECT_TRUE(g.Require("a").ok());
  EXPECT_TRUE(g.Require("server").IsNotFound());
}

}  // namespace
}  // namespace mobilesync
