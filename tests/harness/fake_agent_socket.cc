#include "harness/fake_agent_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

namespace mobilesync::testing {

FakeAgentSocket::~FakeAgentSocket() { Stop(); }

Status FakeAgentSocket::Start(const std::string& path, Mode mode) {
  path_ = path;
  mode_ = mode;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument("socket path too long", path);
  memcpy(addr.sun_path, path.c_str(), path.size());
  unlink(path.c_str());
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return Status::FromErrno("socket", errno);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status::FromErrno("bind " + path, errno);
  }
  // Dovecot's mail processes run as another user: let them connect.
  chmod(path.c_str(), 0666);
  // A tiny backlog, so that a never-accepting agent is full at once.
  if (listen(listen_fd_, mode == Mode::kNeverAccept ? 1 : 128) != 0) {
    return Status::FromErrno("listen", errno);
  }
  if (pipe2(wake_, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

void FakeAgentSocket::Stop() {
  if (thread_.joinable()) {
    (void)!write(wake_[1], "x", 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_[0], &wake_[1]}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  if (!path_.empty()) unlink(path_.c_str());
}

std::vector<std::string> FakeAgentSocket::Lines() {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

void FakeAgentSocket::Run() {
  std::map<int, std::string> conns;  // fd -> partial line
  std::vector<int> held;             // accepted, never read
  while (true) {
    std::vector<struct pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    if (mode_ != Mode::kNeverAccept) fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& c : conns) fds.push_back({c.first, POLLIN, 0});
    if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) break;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      int fd = fds[i].fd;
      if (fd == listen_fd_) {
        int c;
        while ((c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
          connections_++;
          if (mode_ == Mode::kRead) {
            conns[c];
          } else {
            held.push_back(c);
          }
        }
        continue;
      }
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        std::string& partial = conns[fd];
        partial.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
          std::lock_guard<std::mutex> lock(mu_);
          lines_.push_back(partial.substr(0, nl));
          partial.erase(0, nl + 1);
        }
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(fd);
        conns.erase(fd);
      }
    }
  }
  for (auto& c : conns) close(c.first);
  for (int fd : held) close(fd);
}

}  // namespace mobilesync::testing
