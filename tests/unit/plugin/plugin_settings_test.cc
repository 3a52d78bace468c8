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
