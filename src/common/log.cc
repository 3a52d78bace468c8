#include "common/log.h"

#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace mobilesync {
namespace {

struct LogState {
  std::string program = "mobilesync";
  LogLevel min_level = LogLevel::kInfo;
  bool use_syslog = false;
};

LogState& State() {
  static LogState state;
  return state;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}

}  // namespace

Status ParseLogLevel(std::string_view text, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning,
                     LogLevel::kError}) {
    if (text == LevelName(l)) {
      *out = l;
      return Status::OK();
    }
  }
  return Status::InvalidArgument("log level must be debug, info, warning or error");
}

void LogInit(std::string_view program, LogLevel min_level, bool use_syslog) {
  LogState& s = State();
  s.program.assign(program);
  s.min_level = min_level;
  if (use_syslog && !s.use_syslog) {
    openlog(s.program.c_str(), LOG_PID, LOG_MAIL);
  }
  s.use_syslog = use_syslog;
}

void LogSetLevel(LogLevel min_level) { State().min_level = min_level; }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= static_cast<int>(State().min_level);
}

std::string EscapeForLog(std::string_view text, size_t max) {
  std::string out;
  out.reserve(text.size() < max ? text.size() : max);
  for (unsigned char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      char buf[5];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void Log(LogLevel level, std::string_view user, std::string_view text) {
  if (!LogEnabled(level)) return;
  const LogState& s = State();
  std::string body;
  if (!user.empty()) {
    body += "user=";
    body += EscapeForLog(user, 256);
    body += ": ";
  }
  body += EscapeForLog(text, 4096);
  if (s.use_syslog) {
    static const int kPriority[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    syslog(kPriority[static_cast<int>(level)], "%s: %s", LevelName(level),
           body.c_str());
    return;
  }
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf per line: stderr is unbuffered, so a line is one write().
  fprintf(stderr, "%s.%03dZ %s[%d]: %s: %s\n", stamp,
          static_cast<int>(tv.tv_usec / 1000), s.program.c_str(),
          static_cast<int>(getpid()), LevelName(level), body.c_str());
}

}  // namespace mobilesync
