#include "common/daemon.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mobilesync-config.h"

namespace mobilesync {

int ParseDaemonCommandLine(int argc, char** argv, const char* program,
                           const char* default_config, DaemonOptions* out) {
  static const struct option kLong[] = {
      {"config", required_argument, nullptr, 'c'},
      {"foreground", no_argument, nullptr, 'F'},
      {"check-config", no_argument, nullptr, 'n'},
      {"version", no_argument, nullptr, 'V'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  DaemonOptions opts;
  opts.config_path = default_config;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":c:FnVh", kLong, nullptr)) != -1) {
    switch (c) {
      case 'c':
        opts.config_path = optarg;
        break;
      case 'F':
        opts.foreground = true;
        break;
      case 'n':
        opts.check_only = true;
        break;
      case 'V':
        printf("%s %s\n", program, PACKAGE_VERSION);
        return -1;
      case 'h':
        printf(
            "Usage: %s [-c FILE] [-F] [--check-config]\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "  -F, --foreground    stay in the foreground, log to stderr\n"
            "  -n, --check-config  validate the configuration and exit\n"
            "  -V, --version       print the version\n",
            program, default_config);
        return -1;
      case ':':
        fprintf(stderr, "%s: option %s needs an argument\n", program,
                argv[optind - 1]);
        return kExitUsage;
      default:
        fprintf(stderr, "%s: unknown option '%s' (try --help)\n", program,
                argv[optind - 1]);
        return kExitUsage;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", program,
            argv[optind]);
    return kExitUsage;
  }
  *out = opts;
  return kExitOk;
}

Status Daemonize(const DaemonOptions& options) {
  if (options.foreground) return Status::OK();
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid > 0) _exit(0);
  if (setsid() < 0) return Status::FromErrno("setsid", errno);
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (fd > STDOUT_FILENO) close(fd);
  }
  return Status::OK();
}

Status NotifyServiceManager(const std::string& state) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Status::OK();
  size_t len = strlen(path);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path))
    return Status::InvalidArgument("NOTIFY_SOCKET", "not an AF_UNIX socket path");
  memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  socklen_t addr_len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("socket(NOTIFY_SOCKET)", errno);
  ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const struct sockaddr*>(&addr), addr_len);
  int err = errno;
  close(fd);
  if (n < 0) return Status::FromErrno("sendto(NOTIFY_SOCKET)", err);
  return Status::OK();
}

}  // namespace mobilesync
