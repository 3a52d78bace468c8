// mobilesync-server: the reference remote mobile mail server. For now it
// loads and validates its configuration, logs, and runs its event loop until
// SIGTERM.
#include <cstdio>

#include "common/daemon.h"
#include "common/event_loop.h"
#include "common/log.h"
#include "sync_server/server_config.h"

namespace mobilesync::server {
namespace {

constexpr const char* kProgram = "mobilesync-server";

int Run(int argc, char** argv) {
  DaemonOptions opts;
  int rc = ParseDaemonCommandLine(argc, argv, kProgram, kDefaultServerConfig, &opts);
  if (rc != kExitOk) return rc < 0 ? kExitOk : rc;
  ServerConfig config;
  Status s = LoadServerConfig(opts.config_path, &config);
  if (!s.ok()) {
    fprintf(stderr, "%s: %s\n", kProgram, s.message().c_str());
    return kExitConfig;
  }
  if (opts.check_only) {
    printf("%s: configuration %s is valid\n", kProgram, opts.config_path.c_str());
    return kExitOk;
  }
  LogInit(kProgram, config.log_level, config.syslog || !opts.foreground);
  s = Daemonize(opts);
  if (!s.ok()) {
    LogError("", s.ToString());
    return kExitSoftware;
  }
  EventBasePtr base(event_base_new());
  if (!base) {
    LogError("", "cannot create the event loop");
    return kExitSoftware;
  }
  SignalHandlers signals;
  s = signals.Install(
      base.get(),
      [&base] {
        LogInfo("", "SIGTERM received, stopping");
        event_base_loopexit(base.get(), nullptr);
      },
      [] { LogInfo("", "SIGHUP ignored: restart to apply a new configuration"); });
  if (!s.ok()) {
    LogError("", s.ToString());
    return kExitSoftware;
  }
  LogInfo("", "started (listen " + config.listen_host + ":" +
                  std::to_string(config.listen_port) + ", database " +
                  config.database + ")");
  event_base_dispatch(base.get());
  LogInfo("", "stopped");
  return kExitOk;
}

}  // namespace
}  // namespace mobilesync::server

int main(int argc, char** argv) { return mobilesync::server::Run(argc, argv); }
