// What every mobilesync daemon does the same way: its command line
// (-c FILE, -F, --check-config, --version, --help), going to the background
// when not in the foreground, and running its event loop until SIGTERM.
#ifndef MOBILESYNC_COMMON_DAEMON_H_
#define MOBILESYNC_COMMON_DAEMON_H_

#include <string>

#include "common/status.h"

namespace mobilesync {

struct DaemonOptions {
  std::string config_path;
  bool foreground = false;
  bool check_only = false;
};

// Exit codes follow sysexits.h where one fits.
constexpr int kExitOk = 0;
constexpr int kExitUsage = 64;     // EX_USAGE: bad command line
constexpr int kExitConfig = 78;    // EX_CONFIG: bad configuration
constexpr int kExitSoftware = 70;  // EX_SOFTWARE: internal error
constexpr int kExitUnavailable = 69;

// Parses argv. Returns kExitOk to continue; -1 after printing --help or
// --version (the caller exits 0); or kExitUsage after printing a usage error.
// `default_config` is used when -c is absent.
int ParseDaemonCommandLine(int argc, char** argv, const char* program,
                           const char* default_config, DaemonOptions* out);

// Forks into the background (setsid, stdin/stdout to /dev/null) unless
// options.foreground.
[[nodiscard]] Status Daemonize(const DaemonOptions& options);

// Tells the service manager (systemd Type=notify) a state such as
// "READY=1" or "STOPPING=1": one datagram to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a leading '@' is an abstract address). Without the
// variable it does nothing; a failure is returned but never fatal to the
// caller (the unit's start times out instead). No libsystemd needed.
Status NotifyServiceManager(const std::string& state);

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_DAEMON_H_
