// Logging for the mobilesync daemons: one line per event, to stderr (which
// systemd's journal captures) or syslog, with the user name when there is one.
//
// Line format on stderr:
//   2026-11-22T10:00:00.123Z mobilesync-agent[123]: info: user=alice: text
// Control characters in the text are escaped so one event is always one line.
// Never pass a secret to these functions.
#ifndef MOBILESYNC_COMMON_LOG_H_
#define MOBILESYNC_COMMON_LOG_H_

#include <string>
#include <string_view>

#include "common/status.h"

namespace mobilesync {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug", "info", "warning" or "error".
[[nodiscard]] Status ParseLogLevel(std::string_view text, LogLevel* out);

// Sets the program name, the lowest level written and the destination.
void LogInit(std::string_view program, LogLevel min_level, bool use_syslog);
void LogSetLevel(LogLevel min_level);
bool LogEnabled(LogLevel level);

// `user` may be empty for events that concern no user.
void Log(LogLevel level, std::string_view user, std::string_view text);

inline void LogDebug(std::string_view user, std::string_view text) {
  if (LogEnabled(LogLevel::kDebug)) Log(LogLevel::kDebug, user, text);
}
inline void LogInfo(std::string_view user, std::string_view text) {
  Log(LogLevel::kInfo, user, text);
}
inline void LogWarning(std::string_view user, std::string_view text) {
  Log(LogLevel::kWarning, user, text);
}
inline void LogError(std::string_view user, std::string_view text) {
  Log(LogLevel::kError, user, text);
}

// Escapes control characters and bytes >= 0x7f as \xNN, bounded to max bytes.
std::string EscapeForLog(std::string_view text, size_t max = 1024);

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_LOG_H_
