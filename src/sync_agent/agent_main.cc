// mobilesync-agent: the organisation side's daemon. For now it loads and
// validates its configuration, logs, and runs its event loop until SIGTERM;
// SIGHUP re-reads the configuration (a bad new file keeps the old one).
#include <cstdio>

#include "common/daemon.h"
#include "common/event_loop.h"
#include "common/log.h"
#include "sync_agent/agent_config.h"

namespace mobilesync::agent {
namespace {

constexpr const char* kProgram = "mobilesync-agent";

int Run(int argc, char** argv) {
  DaemonOptions opts;
  int rc = ParseDaemonCommandLine(argc, argv, kProgram, kDefaultAgentConfig, &opts);
  if (rc != kExitOk) return rc < 0 ? kExitOk : rc;

  AgentConfig config;
  Status s = LoadAgentConfig(opts.config_path, &config);
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
      [&config, &opts] {
        AgentConfig fresh;
        Status r = LoadAgentConfig(opts.config_path, &fresh);
        if (!r.ok()) {
          LogError("", "reload failed, keeping the running configuration: " +
                           r.message());
          return;
        }
        config = std::move(fresh);
        LogSetLevel(config.log_level);
        LogInfo("", "configuration reloaded from " + opts.config_path);
      });
  if (!s.ok()) {
    LogError("", s.ToString());
    return kExitSoftware;
  }
  LogInfo("", "started (server " + config.server_host + ":" +
                  std::to_string(config.server_port) + ", control socket " +
                  config.control_socket + ")");
  event_base_dispatch(base.get());
  LogInfo("", "stopped");
  return kExitOk;
}

}  // namespace
}  // namespace mobilesync::agent

int main(int argc, char** argv) { return mobilesync::agent::Run(argc, argv); }
