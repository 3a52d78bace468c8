// mobilesync-device: the command-line client of the reference server's
// device API (it plays the mobile device's mail application).
//
//   mobilesync-device [--api HOST:PORT] [--token-file FILE] [--json] COMMAND
//   list | show ID | read ID | unread ID | trash ID | restore ID | destroy ID
//   | compose --to A --subject S [--via-sync] (body on stdin) | sync-now
#include <getopt.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/config_file.h"
#include "common/daemon.h"

namespace mobilesync::server {
namespace {

constexpr const char* kProgram = "mobilesync-device";

struct DeviceCommand {
  std::string verb;
  std::vector<std::string> args;
  std::string to;
  std::string subject;
  bool via_sync = false;
  bool json = false;
};

void Usage(FILE* out) {
  fprintf(out,
          "Usage: %s [--api HOST:PORT] [--token-file FILE] [--json] COMMAND\n"
          "Commands:\n"
          "  list                   the messages in the device's window\n"
          "  show ID                one message with its body\n"
          "  read ID | unread ID    mark read or unread\n"
          "  trash ID | restore ID  move to or back from Trash\n"
          "  destroy ID             delete for good\n"
          "  compose --to A --subject S [--via-sync]   body on stdin\n"
          "  sync-now               ask for a sync now\n"
          "Environment: MOBILESYNC_DEVICE_API, MOBILESYNC_DEVICE_TOKEN_FILE\n",
          kProgram);
}

bool ValidId(const std::string& s) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string ValidateCommand(const DeviceCommand& c) {
  static const char* const kIdVerbs[] = {"show", "read", "unread", "trash",
                                         "restore", "destroy"};
  for (const char* v : kIdVerbs) {
    if (c.verb == v) {
      if (c.args.size() != 1) return c.verb + " needs exactly one message id";
      if (!ValidId(c.args[0])) return "bad message id '" + c.args[0].substr(0, 32) + "'";
      return "";
    }
  }
  if (c.verb == "list" || c.verb == "sync-now") {
    return c.args.empty() ? "" : c.verb + " takes no arguments";
  }
  if (c.verb == "compose") {
    if (!c.args.empty()) return "compose takes --to and --subject, body on stdin";
    if (c.to.empty() || c.to.find('@') == std::string::npos || c.to.size() > 254)
      return "compose needs --to with an e-mail address";
    if (c.subject.size() > 998) return "subject longer than 998 bytes";
    return "";
  }
  return "unknown command '" + c.verb + "'";
}

int Run(int argc, char** argv) {
  static const struct option kLong[] = {
      {"api", required_argument, nullptr, 'a'},
      {"token-file", required_argument, nullptr, 't'},
      {"json", no_argument, nullptr, 'j'},
      {"to", required_argument, nullptr, 'T'},
      {"subject", required_argument, nullptr, 'S'},
      {"via-sync", no_argument, nullptr, 'v'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  const char* env_api = getenv("MOBILESYNC_DEVICE_API");
  std::string api = env_api ? env_api : "127.0.0.1:8080";
  DeviceCommand cmd;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":a:t:jh", kLong, nullptr)) != -1) {
    switch (c) {
      case 'a': api = optarg; break;
      case 't': break;
      case 'j': cmd.json = true; break;
      case 'T': cmd.to = optarg; break;
      case 'S': cmd.subject = optarg; break;
      case 'v': cmd.via_sync = true; break;
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
  if (err.empty() && (cmd.via_sync || !cmd.to.empty()) && cmd.verb != "compose")
    err = "--to, --subject and --via-sync only apply to compose";
  if (!err.empty()) {
    fprintf(stderr, "%s: %s (try --help)\n", kProgram, err.c_str());
    return kExitUsage;
  }
  std::string cfg_text = "api = " + api + "\n";
  ConfigFile f;
  std::string host;
  uint16_t port = 0;
  Status s = ConfigFile::Parse(cfg_text, "--api", &f);
  if (s.ok()) s = f.GetHostPort("api", &host, &port);
  if (!s.ok()) {
    fprintf(stderr, "%s: bad --api value '%s': expected HOST:PORT\n", kProgram, api.c_str());
    return kExitUsage;
  }
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (gai != 0) {
    fprintf(stderr, "%s: cannot resolve %s: %s\n", kProgram, host.c_str(), gai_strerror(gai));
    return kExitUnavailable;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
  int err_no = errno;
  freeaddrinfo(res);
  if (fd >= 0) close(fd);
  if (rc != 0) {
    fprintf(stderr, "%s: cannot reach the device API at %s: %s (is mobilesync-server running?)\n",
            kProgram, api.c_str(), strerror(err_no));
    return kExitUnavailable;
  }
  fprintf(stderr, "%s: the device API at %s is not implemented yet\n", kProgram, api.c_str());
  return kExitUnavailable;
}

}  // namespace
}  // namespace mobilesync::server

int main(int argc, char** argv) { return mobilesync::server::Run(argc, argv); }
