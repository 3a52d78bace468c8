#include "plugin/plugin_settings.h"

#include <gtest/gtest.h>

#include <map>

namespace mobilesync::plugin {
namespace {

SettingLookup From(const std::map<std::string, std::string>& m) {
  return [m](const char* name) -> const char* {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}

TEST(PluginSettings, DisabledUnlessSaidOtherwise) {
  PluginSettings s;
  ASSERT_TRUE(LoadPluginSettings(From({}), &s).ok());
  EXPECT_FALSE(s.enabled);
}

TEST(PluginSettings, AcceptsDovecotStyleBooleans) {
  for (const char* yes : {"yes", "YES", "true", "1", "on"}) {
    PluginSettings s;
    ASSERT_TRUE(LoadPluginSettings(From({{"mobilesync_enabled", yes}}), &s).ok()) << yes;
    EXPECT_TRUE(s.enabled) << yes;
  }
  for (const char* no : {"no", "false", "0", "off", ""}) {
    PluginSettings s;
    ASSERT_TRUE(LoadPluginSettings(From({{"mobilesync_enabled", no}}), &s).ok()) << no;
    EXPECT_FALSE(s.enabled) << no;
  }
}

TEST(PluginSettings, BadValueIsAnErrorNamingTheSetting) {
  PluginSettings s;
  Status st = LoadPluginSettings(From({{"mobilesync_enabled", "perhaps"}}), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("mobilesync_enabled"), std::string::npos);
  EXPECT_NE(st.message().find("perhaps"), std::string::npos);
}

}  // namespace
}  // namespace mobilesync::plugin

namespace mobilesync::plugin {
namespace {

TEST(PluginSettings, DefaultsForEverySetting) {
  PluginSettings s;
  ASSERT_TRUE(LoadPluginSettings(From({}), &s).ok());
  EXPECT_EQ(s.trash_mailbox, "Trash");
  EXPECT_EQ(s.sent_mailbox, "Sent");
  EXPECT_EQ(s.agent_socket, "/run/mobilesync/agent.sock");
  EXPECT_EQ(s.trigger_secret_file, "");
  EXPECT_EQ(s.trigger_max_age_s, 300u);
  EXPECT_EQ(s.trigger_rate_limit, 10u);
}

TEST(PluginSettings, ReadsStringsAndEmptyMeansDefault) {
  PluginSettings s;
  ASSERT_TRUE(LoadPluginSettings(From({{"mobilesync_trash_mailbox", "Deleted Items"},
                                       {"mobilesync_sent_mailbox", ""},
                                       {"mobilesync_agent_socket", "/tmp/a.sock"},
                                       {"mobilesync_trigger_secret_file", "/etc/s"}}),
                                 &s)
                  .ok());
  EXPECT_EQ(s.trash_mailbox, "Deleted Items");
  EXPECT_EQ(s.sent_mailbox, "Sent");
  EXPECT_EQ(s.agent_socket, "/tmp/a.sock");
  EXPECT_EQ(s.trigger_secret_file, "/etc/s");
}

TEST(PluginSettings, SecondsAcceptDovecotUnits) {
  struct {
    const char* in;
    unsigned want;
  } cases[] = {{"300", 300}, {"5m", 300}, {"5 mins", 300}, {"2 hours", 7200}, {"0", 0},
               {"45s", 45}, {"45 secs", 45}};
  for (const auto& c : cases) {
    unsigned v = 1;
    ASSERT_TRUE(ParseSecondsSetting("x", c.in, &v).ok()) << c.in;
    EXPECT_EQ(v, c.want) << c.in;
  }
  for (const char* bad : {"", "m", "5 days", "-1", "5x", "99999999999", "1e3"}) {
    unsigned v;
    EXPECT_FALSE(ParseSecondsSetting("x", bad, &v).ok()) << bad;
  }
  PluginSettings s;
  Status st = LoadPluginSettings(From({{"mobilesync_trigger_max_age", "soon"}}), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("mobilesync_trigger_max_age"), std::string::npos);
}

}  // namespace
}  // namespace mobilesync::plugin
