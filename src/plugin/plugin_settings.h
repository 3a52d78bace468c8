// Per-user plugin settings, parsed once when the mail user is created.
//
// Pure C++ (no Dovecot headers) so the parsing is unit-testable. Values come
// from `plugin { mobilesync_* }` or, per user, from userdb fields.
#ifndef MOBILESYNC_PLUGIN_PLUGIN_SETTINGS_H_
#define MOBILESYNC_PLUGIN_PLUGIN_SETTINGS_H_

#include <functional>
#include <string>

#include "common/status.h"

namespace mobilesync::plugin {

struct PluginSettings {
  bool enabled = false;
};

// Looks a setting up by its full name (e.g. "mobilesync_enabled"); returns
// nullptr when unset.
using SettingLookup = std::function<const char*(const char* name)>;

// Parses a boolean setting value. Accepts yes/no, true/false, 1/0, on/off
// (case-insensitive); anything else is InvalidArgument naming the setting.
[[nodiscard]] Status ParseBoolSetting(const char* name, const char* value,
                                      bool* out);

// Reads every mobilesync_* setting. On a bad value returns InvalidArgument;
// the caller disables the plugin for that user only.
[[nodiscard]] Status LoadPluginSettings(const SettingLookup& lookup,
                                        PluginSettings* out);

}  // namespace mobilesync::plugin

#endif  // MOBILESYNC_PLUGIN_PLUGIN_SETTINGS_H_
