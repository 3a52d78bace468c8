// mobilesync-agent: the organisation side's daemon (see agent.h for its
// parts). It loads and validates its configuration (a bad file: a clear
// error naming the line, exit 78), optionally drops root privileges to the
// configured `user`, and runs its event loop. SIGTERM lets running sessions
// finish (up to shutdown_timeout) and exits 0; SIGHUP re-reads the
// configuration (a bad new file keeps the old one).
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/daemon.h"
#include "common/event_loop.h"
#include "common/log.h"
#include "sync_agent/agent.h"
#include "sync_agent/agent_config.h"

namespace mobilesync::agent {
namespace {

constexpr const char* kProgram = "mobilesync-agent";

// Started as root with `user = NAME`: become NAME (its groups included).
// The agent needs no privilege: it talks to Dovecot as a master user over
// IMAP and to the server over TCP.
Status DropPrivileges(const std::string& user) {
  if (user.empty()) {
    if (geteuid() == 0)
      LogWarning("", "running as root: set `user` in the configuration to drop privileges");
    return Status::OK();
  }
  struct passwd pw, *res = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || res == nullptr)
    return Status::InvalidArgument("user: no such user", user);
  if (geteuid() != 0) {
    if (geteuid() == pw.pw_uid) return Status::OK();
    return Status::PermissionDenied("cannot switch to user " + user, "not started as root");
  }
  if (initgroups(pw.pw_name, pw.pw_gid) != 0) return Status::FromErrno("initgroups", errno);
  if (setgid(pw.pw_gid) != 0) return Status::FromErrno("setgid", errno);
  if (setuid(pw.pw_uid) != 0) return Status::FromErrno("setuid", errno);
  // Must not be able to regain root.
  if (setuid(0) == 0) return Status::PermissionDenied("privilege drop did not stick");
  return Status::OK();
}

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
  s = DropPrivileges(config.run_as_user);
  if (!s.ok()) {
    LogError("", s.ToString());
    return kExitConfig;
  }
  s = Daemonize(opts);
  if (!s.ok()) {
    LogError("", s.ToString());
    return kExitSoftware;
  }

  // Declared first: destroyed last, after everything created on it.
  EventBasePtr base(event_base_new());
  if (!base) {
    LogError("", "cannot create the event loop");
    return kExitSoftware;
  }
  auto agent = std::make_unique<Agent>(base.get(), config);
  s = agent->Start();
  if (!s.ok()) {
    LogError("", "cannot start: " + s.ToString());
    return s.IsInvalidArgument() ? kExitConfig : kExitUnavailable;
  }
  SignalHandlers signals;
  s = signals.Install(
      base.get(),
      [&base, &agent] {
        LogInfo("", "SIGTERM received, stopping");
        (void)NotifyServiceManager("STOPPING=1");
        agent->Shutdown([&base] { event_base_loopexit(base.get(), nullptr); });
      },
      [&agent, &opts] {
        AgentConfig fresh;
        Status r = LoadAgentConfig(opts.config_path, &fresh);
        if (!r.ok()) {
          LogError("", "reload failed, keeping the running configuration: " + r.message());
          return;
        }
        (void)NotifyServiceManager("RELOADING=1");
        LogSetLevel(fresh.log_level);
        agent->Reload(fresh);
        LogInfo("", "configuration reloaded from " + opts.config_path);
        (void)NotifyServiceManager("READY=1");
      });
  if (!s.ok()) {
    LogError("", s.ToString());
    return kExitSoftware;
  }
  LogInfo("", "started (server " + config.server_host + ":" + std::to_string(config.server_port) +
                  ", control socket " + config.control_socket + ")");
  // systemd Type=notify: ready once the control socket listens.
  Status n = NotifyServiceManager("READY=1\nSTATUS=running\nMAINPID=" + std::to_string(getpid()));
  if (!n.ok()) LogWarning("", "cannot notify the service manager: " + n.ToString());
  event_base_dispatch(base.get());
  agent.reset();
  LogInfo("", "stopped");
  return kExitOk;
}

}  // namespace
}  // namespace mobilesync::agent

int main(int argc, char** argv) { return mobilesync::agent::Run(argc, argv); }
