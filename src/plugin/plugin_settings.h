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
  bool enabled = false;                                      // mobilesync_enabled
  std::string trash_mailbox = "Trash";                       // mobilesync_trash_mailbox
  std::string sent_mailbox = "Sent";                         // mobilesync_sent_mailbox
  std::string agent_socket = "/run/mobilesync/agent.sock";   // mobilesync_agent_socket
  std::string trigger_secret_file;                           // mobilesync_trigger_secret_file
  unsigned trigger_max_age_s = 300;                          // mobilesync_trigger_max_age
  unsigned trigger_rate_limit = 10;                          // mobilesync_trigger_rate_limit
};

// Parses a non-negative number of seconds, optionally with Dovecot's
// suffixes s, secs, m, mins, h, hours ("300", "5 mins", "5m").
[[nodiscard]] Status ParseSecondsSetting(const char* name, const char* value,
                                         unsigned* out);

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
