// mobilesync-server: the reference remote mobile mail server. Loads and
// validates its configuration, opens the store, serves agents over TLS and
// devices over the loopback HTTP API, until SIGTERM.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/daemon.h"
#include "common/event_loop.h"
#include "common/log.h"
#include "sync_server/server.h"
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
  Server server(base.get(), config);
  s = server.Start();
  if (!s.ok()) {
    LogError("", "cannot start: " + s.ToString());
    return s.IsInvalidArgument() || s.IsPermissionDenied() ? kExitConfig : kExitUnavailable;
  }
  SignalHandlers signals;
  s = signals.Install(
      base.get(),
      [&base, &server] {
        LogInfo("", "SIGTERM received, stopping");
        (void)NotifyServiceManager("STOPPING=1");
        server.Stop();
        event_base_loopexit(base.get(), nullptr);
      },
      [] { LogInfo("", "SIGHUP ignored: restart to apply a new configuration"); });
  if (!s.ok()) {
    LogError("", s.ToString());
    return kExitSoftware;
  }
  LogInfo("", "started (listen " + config.listen_host + ":" +
                  std::to_string(server.agent_port()) + ", device API " +
                  config.device_api_host + ":" + std::to_string(server.device_api_port()) +
                  ", database " + config.database + ")");
  // systemd Type=notify: ready once both listeners are bound.
  Status n = NotifyServiceManager("READY=1\nSTATUS=running\nMAINPID=" + std::to_string(getpid()));
  if (!n.ok()) LogWarning("", "cannot notify the service manager: " + n.ToString());
  event_base_dispatch(base.get());
  LogInfo("", "stopped");
  return kExitOk;
}

}  // namespace
}  // namespace mobilesync::server

int main(int argc, char** argv) { return mobilesync::server::Run(argc, argv); }
