#include "harness/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "harness/temp_dir.h"

extern char** environ;

namespace mobilesync::testing {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// argv and environment (ours plus `extra`) as execvpe() wants them, built
// before fork() so the child only calls exec.
class ExecArgs {
 public:
  ExecArgs(const std::vector<std::string>& argv, const std::vector<std::string>& extra)
      : argv_(argv) {
    for (char** e = environ; *e; ++e) env_.emplace_back(*e);
    env_.insert(env_.end(), extra.begin(), extra.end());
    for (auto& a : argv_) argp_.push_back(a.data());
    argp_.push_back(nullptr);
    for (auto& e : env_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }
  void Exec() { execvpe(argp_[0], argp_.data(), envp_.data()); }

 private:
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  std::vector<char*> argp_;
  std::vector<char*> envp_;
};

}  // namespace

bool WaitFor(const std::function<bool()>& condition, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto pause = milliseconds(1);
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    // A short, growing pause between polls; the deadline bounds the wait.
    std::this_thread::sleep_for(pause);
    if (pause < milliseconds(50)) pause *= 2;
  }
}

Process::~Process() {
  if (pid_ > 0) {
    KillGroup();
    int status;
    if (exit_code_ < 0) waitpid(pid_, &status, 0);
  }
}

Status Process::Start(const std::vector<std::string>& argv, const std::string& output_path,
                      const std::vector<std::string>& env) {
  if (argv.empty()) return Status::InvalidArgument("empty argv");
  int out_fd = -1;
  if (!output_path.empty()) {
    out_fd = open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) return Status::FromErrno("open " + output_path, errno);
  }
  ExecArgs exec_args(argv, env);

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    if (out_fd >= 0) close(out_fd);
    return Status::FromErrno("fork", errno);
  }
  if (pid == 0) {
    setsid();
    // A test that aborts runs no destructor: the child must not outlive it.
    // (Its own children notice their parent's death: Dovecot's do.)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (out_fd >= 0) {
      dup2(out_fd, STDOUT_FILENO);
      dup2(out_fd, STDERR_FILENO);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    exec_args.Exec();
    _exit(127);
  }
  if (out_fd >= 0) close(out_fd);
  pid_ = pid;
  exit_code_ = -1;
  return Status::OK();
}

bool Process::running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (pid_ > 0 && exit_code_ < 0) kill(pid_, sig);
}

bool Process::Wait(milliseconds timeout, int* exit_status) {
  bool done = WaitFor([this] { return !running(); }, timeout);
  if (done && exit_status) *exit_status = exit_code_;
  return done;
}

int Process::Stop(milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (running()) {
    Signal(SIGTERM);
    if (!Wait(timeout)) {
      KillGroup();
      Wait(milliseconds(5000));
      KillGroup();
      return -1;
    }
  }
  KillGroup();
  return exit_code_;
}

int Process::KillGroup() {
  if (pid_ <= 0) return 0;
  std::vector<pid_t> left = ProcessesInGroup(pid_);
  if (!left.empty()) kill(-pid_, SIGKILL);
  return static_cast<int>(left.size());
}

std::vector<pid_t> ProcessesInGroup(pid_t pgid) {
  std::vector<pid_t> pids;
  DIR* d = opendir("/proc");
  if (!d) return pids;
  while (struct dirent* e = readdir(d)) {
    char* end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // Fields after the parenthesised command name: state ppid pgrp ...
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (sscanf(line.c_str() + close + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z') pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return pids;
}

Status RunCommand(const std::vector<std::string>& argv, CommandResult* result,
                  milliseconds timeout, const std::string& stdin_data,
                  const std::vector<std::string>& env) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return Status::FromErrno("pipe", errno);
  }
  ExecArgs exec_args(argv, env);
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(out_pipe[1], STDERR_FILENO);
    exec_args.Exec();
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  // Feed stdin and drain stdout together so neither side can block the other.
  size_t in_off = 0;
  int in_fd = in_pipe[1];
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  result->output.clear();
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (true) {
    struct pollfd fds[2];
    int n = 0;
    fds[n++] = {out_pipe[0], POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int r = poll(fds, n, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(in_fd, stdin_data.data() + in_off, stdin_data.size() - in_off);
      if (w > 0) in_off += static_cast<size_t>(w);
      if (w < 0 || in_off == stdin_data.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t got = read(out_pipe[0], buf, sizeof buf);
      if (got <= 0) break;
      result->output.append(buf, static_cast<size_t>(got));
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[0]);
  if (timed_out) kill(-pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  result->exit_code = DecodeWaitStatus(status);
  if (timed_out) {
    return Status::Timeout("command timed out", argv[0]);
  }
  return Status::OK();
}

}  // namespace mobilesync::testing
