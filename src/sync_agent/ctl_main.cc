// mobilesyncctl: the administrator's command-line view of a running agent.
//
//   mobilesyncctl [-c AGENT_CONF | -s SOCKET] [--json] COMMAND [ARGS]
//   status [USER] | sync USER [--wait] | users | enable USER|--all-from-userdb
//   | disable USER
//
// It talks to the agent over the agent's UNIX control socket.
#include <getopt.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/config_file.h"
#include "common/daemon.h"
#include "common/user_name.h"
#include "sync_agent/agent_config.h"

namespace mobilesync::agent {
namespace {

constexpr const char* kProgram = "mobilesyncctl";

struct CtlCommand {
  std::string verb;
  std::vector<std::string> args;
  bool json = false;
  bool wait = false;
  bool all_from_userdb = false;
};

void Usage(FILE* out) {
  fprintf(out,
          "Usage: %s [-c AGENT_CONF | -s SOCKET] [--json] COMMAND [ARGS]\n"
          "Commands:\n"
          "  status [USER]          connection state, last sync, pending actions\n"
          "  sync USER [--wait]     sync USER now (wait for the result)\n"
          "  users                  list enabled users\n"
          "  enable USER            enable USER\n"
          "  enable --all-from-userdb  enable every user with mobilesync_enabled=yes\n"
          "  disable USER           disable USER\n"
          "Options:\n"
          "  -c, --config FILE      agent configuration (default %s)\n"
          "  -s, --socket PATH      control socket (overrides the configuration)\n"
          "  -j, --json             machine-readable output for read commands\n",
          kProgram, kDefaultAgentConfig);
}

// Checks the verb and its arguments. Returns an error message or "".
std::string ValidateCommand(const CtlCommand& c) {
  const size_t n = c.args.size();
  if (c.verb == "status") {
    if (n > 1) return "status takes at most one user";
  } else if (c.verb == "sync") {
    if (n != 1) return "sync needs exactly one user";
  } else if (c.verb == "users") {
    if (n != 0) return "users takes no arguments";
  } else if (c.verb == "enable") {
    if (c.all_from_userdb ? n != 0 : n != 1)
      return "enable needs exactly one user, or --all-from-userdb";
  } else if (c.verb == "disable") {
    if (n != 1) return "disable needs exactly one user";
  } else {
    return "unknown command '" + c.verb + "'";
  }
  if (c.wait && c.verb != "sync") return "--wait only applies to sync";
  if (c.all_from_userdb && c.verb != "enable")
    return "--all-from-userdb only applies to enable";
  for (const std::string& user : c.args) {
    Status s = ValidateUserName(user);
    if (!s.ok()) return "bad user name: " + s.message();
  }
  return "";
}

int Run(int argc, char** argv) {
  static const struct option kLong[] = {
      {"config", required_argument, nullptr, 'c'},
      {"socket", required_argument, nullptr, 's'},
      {"json", no_argument, nullptr, 'j'},
      {"wait", no_argument, nullptr, 'w'},
      {"all-from-userdb", no_argument, nullptr, 'A'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  std::string config_path = kDefaultAgentConfig;
  std::string socket_path;
  CtlCommand cmd;
  opterr = 0;
  int c;
  // '+' would stop at the first non-option; we allow options anywhere.
  while ((c = getopt_long(argc, argv, ":c:s:jwh", kLong, nullptr)) != -1) {
    switch (c) {
      case 'c': config_path = optarg; break;
      case 's': socket_path = optarg; break;
      case 'j': cmd.json = true; break;
      case 'w': cmd.wait = true; break;
      case 'A': cmd.all_from_userdb = true; break;
      case 'h': Usage(stdout); return kExitOk;
      case ':':
        fprintf(stderr, "%s: option %s needs an argument\n", kProgram, argv[optind - 1]);
        return kExitUsage;
      default:
        fprintf(stderr, "%s: unknown option '%s' (try --help)\n", kProgram, argv[optind - 1]);
        return kExitUsage;
    }
  }
  if (optind >= argc) {
    Usage(stderr);
    return kExitUsage;
  }
  cmd.verb = argv[optind++];
  for (; optind < argc; ++optind) cmd.args.emplace_back(argv[optind]);
  std::string err = ValidateCommand(cmd);
  if (!err.empty()) {
    fprintf(stderr, "%s: %s (try --help)\n", kProgram, err.c_str());
    return kExitUsage;
  }

  if (socket_path.empty()) {
    // Only the socket path is needed: read it without the full validation
    // (which checks secret files an operator's account may not read).
    ConfigFile f;
    Status s = ConfigFile::Load(config_path, &f);
    if (s.ok()) s = f.GetString("control_socket", &socket_path);
    if (!s.ok()) {
      fprintf(stderr, "%s: %s\n", kProgram, s.message().c_str());
      return kExitConfig;
    }
    if (socket_path.empty()) socket_path = AgentConfig().control_socket;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    fprintf(stderr, "%s: control socket path too long: %s\n", kProgram, socket_path.c_str());
    return kExitUsage;
  }
  memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err_no = errno;
    if (fd >= 0) close(fd);
    fprintf(stderr, "%s: cannot connect to the agent at %s: %s (is mobilesync-agent running?)\n",
            kProgram, socket_path.c_str(), strerror(err_no));
    return kExitUnavailable;
  }
  close(fd);
  fprintf(stderr, "%s: the agent at %s does not answer control commands yet\n", kProgram,
          socket_path.c_str());
  return kExitUnavailable;
}

}  // namespace
}  // namespace mobilesync::agent

int main(int argc, char** argv) { return mobilesync::agent::Run(argc, argv); }
