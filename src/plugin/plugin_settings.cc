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

Status ParseSecondsSetting(const char* name, const char* value, unsigned* out) {
  std::string v(value);
  size_t i = 0;
  unsigned long long n = 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9' && n <= 100000000ULL) {
    n = n * 10 + static_cast<unsigned>(v[i] - '0');
    ++i;
  }
  std::string unit = v.substr(i);
  while (!unit.empty() && unit[0] == ' ') unit.erase(0, 1);
  unsigned long long mult = 0;
  if (unit.empty() || unit == "s" || unit == "sec" || unit == "secs") mult = 1;
  else if (unit == "m" || unit == "min" || unit == "mins") mult = 60;
  else if (unit == "h" || unit == "hour" || unit == "hours") mult = 3600;
  if (i == 0 || mult == 0 || n * mult > 86400ULL * 365) {
    return Status::InvalidArgument(
        std::string(name) + ": expected a number of seconds, got",
        std::string("'") + v.substr(0, 64) + "'");
  }
  *out = static_cast<unsigned>(n * mult);
  return Status::OK();
}

Status LoadPluginSettings(const SettingLookup& lookup, PluginSettings* out) {
  PluginSettings s;
  Status st;
  if (const char* v = lookup("mobilesync_enabled"); v != nullptr) {
    st = ParseBoolSetting("mobilesync_enabled", v, &s.enabled);
    if (!st.ok()) return st;
  }
  // Mailbox names and paths: any non-empty value; empty means the default.
  struct {
    const char* name;
    std::string* field;
  } strings[] = {{"mobilesync_trash_mailbox", &s.trash_mailbox},
                 {"mobilesync_sent_mailbox", &s.sent_mailbox},
                 {"mobilesync_agent_socket", &s.agent_socket},
                 {"mobilesync_trigger_secret_file", &s.trigger_secret_file}};
  for (const auto& e : strings) {
    const char* v = lookup(e.name);
    if (v != nullptr && *v != '\0') *e.field = v;
  }
  if (const char* v = lookup("mobilesync_trigger_max_age"); v != nullptr && *v != '\0') {
    st = ParseSecondsSetting("mobilesync_trigger_max_age", v, &s.trigger_max_age_s);
    if (!st.ok()) return st;
  }
  if (const char* v = lookup("mobilesync_trigger_rate_limit"); v != nullptr && *v != '\0') {
    // A count per minute; same syntax as seconds without a unit.
    st = ParseSecondsSetting("mobilesync_trigger_rate_limit", v, &s.trigger_rate_limit);
    if (!st.ok()) return st;
  }
  *out = s;
  return Status::OK();
}

}  // namespace mobilesync::plugin
