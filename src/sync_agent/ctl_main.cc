// mobilesyncctl: the administrator's command-line view of a running agent.
//
//   mobilesyncctl [-c AGENT_CONF | -s SOCKET] [--json] COMMAND [ARGS]
//   status [USER] | sync USER [--wait] | users | enable USER|--all-from-userdb
//   | disable USER
//
// It talks to the agent over the agent's UNIX control socket
// (docs/control-protocol.md): "hello 1", then one request line per command,
// each answered by "+OK" + body + "." or "-ERR text". The agent renders both
// the human tables and the JSON (--json), so this program only transports.
//
// enable --all-from-userdb runs doveadm here, in the administrator's
// process (never inside the agent's event loop): `doveadm user '*'` lists
// the users, `doveadm user -f mobilesync_enabled U...` reads the setting
// in batches, and the users with "yes" are enabled in batches.
#include <getopt.h>
#include <poll.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>

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

struct Doveadm {
  std::string path = "/usr/bin/doveadm";
  std::string config;
};

// Runs argv, returns its stdout (stderr passes through to ours).
Status RunCapture(const std::vector<std::string>& argv, std::string* out, int* exit_code) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid == 0) {
    dup2(p[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(p[1]);
  out->clear();
  char buf[65536];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return Status::OK();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t nl = text.find('\n', i);
    if (nl == std::string::npos) nl = text.size();
    std::string l = text.substr(i, nl - i);
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
    size_t b = l.find_first_not_of(' ');
    if (b != std::string::npos) out.push_back(l.substr(b));
    i = nl + 1;
  }
  return out;
}

// The users of the userdb whose mobilesync_enabled field is "yes".
Status UserdbEnabledUsers(const Doveadm& d, std::vector<std::string>* out, size_t* seen) {
  std::vector<std::string> base = {d.path};
  if (!d.config.empty()) {
    base.push_back("-c");
    base.push_back(d.config);
  }
  std::vector<std::string> argv = base;
  argv.insert(argv.end(), {"user", "*"});
  std::string text;
  int code = 0;
  Status s = RunCapture(argv, &text, &code);
  if (!s.ok()) return s;
  if (code != 0) return Status::IOError("doveadm user '*' failed", "exit status " + std::to_string(code));
  std::vector<std::string> users;
  for (const std::string& u : Lines(text))
    if (ValidateUserName(u).ok()) users.push_back(u);
  *seen = users.size();
  // One doveadm per batch of users (format below).
  const size_t kBatch = 200;
  for (size_t i = 0; i < users.size(); i += kBatch) {
    argv = base;
    argv.insert(argv.end(), {"user", "-f", "mobilesync_enabled"});
    size_t end = std::min(users.size(), i + kBatch);
    for (size_t j = i; j < end; ++j) argv.push_back(users[j]);
    s = RunCapture(argv, &text, &code);
    if (!s.ok()) return s;
    // Exit status 67 (EX_NOUSER): a user vanished since the listing; the
    // others are still valid.
    if (code != 0 && code != 2 && code != 67)
      return Status::IOError("doveadm user -f mobilesync_enabled failed",
                             "exit status " + std::to_string(code));
    // The output: user 1's value line, then for each next user an empty
    // separator line followed by its value line; a user without the
    // field (or unknown to the userdb) prints no value line at all. So an
    // empty line moves to the next user and a value belongs to the current.
    std::vector<std::string> values(end - i);
    size_t idx = 0;
    size_t k = 0;
    bool bad = false;
    while (k < text.size()) {
      size_t nl = text.find('\n', k);
      if (nl == std::string::npos) nl = text.size();
      std::string l = text.substr(k, nl - k);
      k = nl + 1;
      if (l.empty()) {
        ++idx;
      } else if (idx < values.size()) {
        values[idx] = l;
      } else {
        bad = true;
      }
    }
    if (bad || idx > values.size())
      return Status::Corruption("unexpected doveadm user -f output",
                                std::to_string(idx) + " separators for " +
                                    std::to_string(end - i) + " users");
    for (size_t j = i; j < end; ++j) {
      std::string v = values[j - i];
      for (char& c : v) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
      if (v == "yes" || v == "y" || v == "1" || v == "true") out->push_back(users[j]);
    }
  }
  return Status::OK();
}

// A connection to the agent's control socket.
class ControlClient {
 public:
  ~ControlClient() {
    if (fd_ >= 0) close(fd_);
  }
  Status Connect(const std::string& path) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument("control socket path too long", path);
    memcpy(addr.sun_path, path.c_str(), path.size());
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      return Status::FromErrno("cannot connect to the agent at " + path, errno);
    std::string body;
    return Request("hello 1", &body);
  }
  // Sends one request line; *body gets the reply body.
  Status Request(const std::string& line, std::string* body) {
    std::string out = line + "\n";
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = write(fd_, out.data() + off, out.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno("write to the agent", errno);
      off += static_cast<size_t>(n);
    }
    std::string first;
    Status s = ReadLine(&first);
    if (!s.ok()) return s;
    if (first.rfind("-ERR", 0) == 0) return Status::Aborted(first.size() > 5 ? first.substr(5) : "error");
    if (first != "+OK") return Status::Corruption("unexpected reply from the agent", first);
    body->clear();
    while (true) {
      std::string l;
      s = ReadLine(&l);
      if (!s.ok()) return s;
      if (l == ".") break;
      if (!l.empty() && l[0] == '.') l.erase(0, 1);
      *body += l + "\n";
    }
    return Status::OK();
  }

 private:
  Status ReadLine(std::string* line) {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return Status::OK();
      }
      char tmp[65536];
      ssize_t n = read(fd_, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::FromErrno("read from the agent", errno);
      if (n == 0) return Status::Unavailable("the agent closed the connection");
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  int fd_ = -1;
  std::string buf_;
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
          "  -j, --json             machine-readable output for read commands\n"
          "      --doveadm PATH     doveadm binary for --all-from-userdb\n"
          "      --doveadm-config F doveadm -c F (a non-default Dovecot configuration)\n",
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
      {"doveadm", required_argument, nullptr, 'D'},
      {"doveadm-config", required_argument, nullptr, 'C'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  std::string config_path = kDefaultAgentConfig;
  std::string socket_path;
  Doveadm doveadm;
  bool doveadm_set = false, doveadm_config_set = false;
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
      case 'D': doveadm.path = optarg; doveadm_set = true; break;
      case 'C': doveadm.config = optarg; doveadm_config_set = true; break;
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

  {
    // Only a few keys are needed: read them without the full validation
    // (which checks secret files an operator's account may not read).
    ConfigFile f;
    Status s = ConfigFile::Load(config_path, &f);
    std::string cfg_socket, cfg_doveadm, cfg_doveadm_config;
    if (s.ok()) s = f.GetString("control_socket", &cfg_socket);
    if (s.ok()) s = f.GetString("doveadm_path", &cfg_doveadm);
    if (s.ok()) s = f.GetString("doveadm_config", &cfg_doveadm_config);
    if (!s.ok() && socket_path.empty()) {
      fprintf(stderr, "%s: %s\n", kProgram, s.message().c_str());
      return kExitConfig;
    }
    if (socket_path.empty()) socket_path = cfg_socket.empty() ? AgentConfig().control_socket : cfg_socket;
    if (!doveadm_set && !cfg_doveadm.empty()) doveadm.path = cfg_doveadm;
    if (!doveadm_config_set && !cfg_doveadm_config.empty()) doveadm.config = cfg_doveadm_config;
  }
  ControlClient agent;
  Status s = agent.Connect(socket_path);
  if (!s.ok()) {
    fprintf(stderr, "%s: %s (is mobilesync-agent running?)\n", kProgram, s.message().c_str());
    return kExitUnavailable;
  }
  std::string body;
  if (cmd.verb == "enable" && cmd.all_from_userdb) {
    std::vector<std::string> users;
    size_t seen = 0;
    s = UserdbEnabledUsers(doveadm, &users, &seen);
    if (!s.ok()) {
      fprintf(stderr, "%s: %s\n", kProgram, s.ToString().c_str());
      return kExitSoftware;
    }
    size_t enabled = 0;
    const size_t kBatch = 500;  // users per request line (< 64 KiB)
    for (size_t i = 0; i < users.size(); i += kBatch) {
      std::string line = "enable source=userdb";
      for (size_t j = i; j < users.size() && j < i + kBatch; ++j) line += " " + users[j];
      s = agent.Request(line, &body);
      if (!s.ok()) {
        fprintf(stderr, "%s: %s\n", kProgram, s.message().c_str());
        return kExitSoftware;
      }
      enabled += static_cast<size_t>(atol(body.c_str()));
    }
    printf("%zu users in the userdb, %zu with mobilesync_enabled=yes, %zu newly enabled\n",
           seen, users.size(), enabled);
    return kExitOk;
  }
  std::string line = cmd.verb;
  for (const std::string& a : cmd.args) line += " " + a;
  if (cmd.wait) line += " --wait";
  if (cmd.json) line += " --json";
  s = agent.Request(line, &body);
  if (!s.ok()) {
    fprintf(stderr, "%s: %s\n", kProgram, s.message().c_str());
    return s.IsUnavailable() || s.IsIOError() ? kExitUnavailable : 1;
  }
  fputs(body.c_str(), stdout);
  return kExitOk;
}

}  // namespace
}  // namespace mobilesync::agent

int main(int argc, char** argv) { return mobilesync::agent::Run(argc, argv); }
