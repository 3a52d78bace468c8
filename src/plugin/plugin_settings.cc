#include "plugin/plugin_settings.h"

#include <strings.h>

namespace mobilesync::plugin {

Status ParseBoolSetting(const char* name, const char* value, bool* out) {
  static const char* const kTrue[] = {"yes", "true", "1", "on"};
  static const char* const kFalse[] = {"no", "false", "0", "off", ""};
  for (const char* t : kTrue) {
    if (strcasecmp(value, t) == 0) {
      *out = true;
      return Status::OK();
    }
  }
  for (const char* f : kFalse) {
    if (strcasecmp(value, f) == 0) {
      *out = false;
      return Status::OK();
    }
  }
  return Status::InvalidArgument(
      std::string(name) + ": expected yes or no, got",
      std::string("'") + std::string(value).substr(0, 64) + "'");
}

Status LoadPluginSettings(const SettingLookup& lookup, PluginSettings* out) {
  PluginSettings s;
  if (const char* v = lookup("mobilesync_enabled"); v != nullptr) {
    Status st = ParseBoolSetting("mobilesync_enabled", v, &s.enabled);
    if (!st.ok()) return st;
  }
  *out = s;
  return Status::OK();
}

}  // namespace mobilesync::plugin
