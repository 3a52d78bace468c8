#include "harness/tcp_proxy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mobilesync::testing {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) (void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Close so that the peer sees RST, not FIN.
void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

}  // namespace

// One direction of a proxied connection.
struct Direction {
  int from = -1;
  int to = -1;
  std::string buf;
  bool eof = false;   // `from` said FIN
  bool shut = false;  // FIN passed on to `to`
  double tokens = 0;  // trickle budget (bytes)
};

struct TcpProxy::Pipe {
  int client = -1;
  int server = -1;
  Direction up, down;  // client->server, server->client
  double last = 0;
  bool dead = false;
};

TcpProxy::TcpProxy() = default;

TcpProxy::~TcpProxy() {
  stop_ = true;
  Wake();
  if (thread_.joinable()) thread_.join();
  CloseAll(false);
  if (listen_fd_ >= 0) close(listen_fd_);
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

Status TcpProxy::Start(uint16_t target_port) {
  target_ = target_port;
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::FromErrno("pipe2", errno);
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return Status::FromErrno("socket", errno);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
    return Status::FromErrno("proxy listen", errno);
  }
  port_ = ntohs(sin.sin_port);
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

void TcpProxy::SetMode(Mode mode, uint64_t bytes_per_second) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = mode;
    rate_ = bytes_per_second;
  }
  Wake();
}

void TcpProxy::Cut() {
  cut_requested_ = true;
  Wake();
  // Done when the loop has taken the request (it resets the flag).
  for (int i = 0; i < 2000 && cut_requested_.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void TcpProxy::Wake() {
  if (wake_[1] >= 0) {
    char c = 1;
    (void)!write(wake_[1], &c, 1);  // full pipe: a wake-up is pending anyway
  }
}

void TcpProxy::CloseAll(bool reset) {
  for (auto& p : pipes_) {
    if (reset) {
      CloseWithReset(p->client);
      CloseWithReset(p->server);
      ++cut_connections_;
    } else {
      if (p->client >= 0) close(p->client);
      if (p->server >= 0) close(p->server);
    }
  }
  pipes_.clear();
  open_ = 0;
}

void TcpProxy::Loop() {
  while (!stop_) {
    Mode mode;
    uint64_t rate;
    {
      std::lock_guard<std::mutex> lock(mu_);
      mode = mode_;
      rate = rate_;
    }
    if (cut_requested_) {
      CloseAll(true);
      cut_requested_ = false;
    }
    const double now = NowSeconds();
    // Trickle: refill each direction's budget, at most a fifth of a second's
    // worth (so a burst after a pause stays small), at least one byte.
    for (auto& p : pipes_) {
      const double dt = p->last == 0 ? 0 : now - p->last;
      p->last = now;
      for (Direction* d : {&p->up, &p->down}) {
        const double cap = std::max(1.0, static_cast<double>(rate) / 5);
        d->tokens = std::min(cap, d->tokens + dt * static_cast<double>(rate));
      }
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    const bool listening = mode != Mode::kStall;
    if (listening) fds.push_back({listen_fd_, POLLIN, 0});
    const size_t first_pipe = fds.size();
    bool waiting_for_tokens = false;
    for (auto& p : pipes_) {
      short ce = 0, se = 0;
      if (mode != Mode::kStall) {
        auto want = [&](Direction& d, short* from_ev, short* to_ev) {
          if (!d.eof && d.buf.size() < kBufferBytes) *from_ev |= POLLIN;
          if (!d.buf.empty()) {
            if (mode == Mode::kTrickle && d.tokens < 1) {
              waiting_for_tokens = true;
            } else {
              *to_ev |= POLLOUT;
            }
          }
        };
        want(p->up, &ce, &se);
        want(p->down, &se, &ce);
      }
      // An fd with nothing wanted is left out: poll would still report its
      // POLLHUP and spin.
      fds.push_back({ce != 0 ? p->client : -1, ce, 0});
      fds.push_back({se != 0 ? p->server : -1, se, 0});
    }
    const int timeout = waiting_for_tokens ? 10 : (mode == Mode::kTrickle ? 50 : 500);
    if (poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    // Only the pipes that were polled: accept() below may add one.
    const size_t polled = pipes_.size();
    if (listening && (fds[1].revents & POLLIN)) {
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port = htons(target_);
        // A blocking connect on loopback: immediate (accepted or refused).
        if (s >= 0 && connect(s, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0) {
          SetNonBlocking(s);
          auto p = std::make_unique<Pipe>();
          p->client = c;
          p->server = s;
          p->up.from = c;
          p->up.to = s;
          p->down.from = s;
          p->down.to = c;
          p->last = NowSeconds();
          pipes_.push_back(std::move(p));
          ++accepted_;
          ++open_;
        } else {
          // The server is down: the client sees the same thing (RST).
          if (s >= 0) close(s);
          CloseWithReset(c);
        }
      }
    }
    for (size_t i = 0; i < polled; ++i) {
      Pipe& p = *pipes_[i];
      const short crev = fds[first_pipe + 2 * i].revents;
      const short srev = fds[first_pipe + 2 * i + 1].revents;
      auto pump = [&](Direction& d, short from_rev, short to_rev) {
        if (from_rev & (POLLIN | POLLHUP | POLLERR)) {
          if (d.buf.size() < kBufferBytes && !d.eof) {
            char tmp[16384];
            size_t room = std::min(sizeof tmp, kBufferBytes - d.buf.size());
            ssize_t n = read(d.from, tmp, room);
            if (n > 0) {
              d.buf.append(tmp, static_cast<size_t>(n));
            } else if (n == 0) {
              d.eof = true;
            } else if (errno != EAGAIN && errno != EINTR) {
              p.dead = true;  // reset by the peer: pass the reset on
            }
          }
        }
        if ((to_rev & POLLOUT) && !d.buf.empty()) {
          size_t len = d.buf.size();
          if (mode == Mode::kTrickle) len = std::min(len, static_cast<size_t>(d.tokens));
          if (len > 0) {
            ssize_t n = send(d.to, d.buf.data(), len, MSG_NOSIGNAL);
            if (n > 0) {
              d.buf.erase(0, static_cast<size_t>(n));
              bytes_ += static_cast<uint64_t>(n);
              if (mode == Mode::kTrickle) d.tokens -= static_cast<double>(n);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
              p.dead = true;
            }
          }
        }
        if (d.eof && d.buf.empty() && !d.shut) {
          (void)shutdown(d.to, SHUT_WR);
          d.shut = true;
        }
      };
      pump(p.up, crev, srev);
      pump(p.down, srev, crev);
      if ((crev | srev) & POLLERR) p.dead = true;
    }
    // Drop finished pipes: a reset on one side resets the other; FIN both
    // ways (all passed on) closes both.
    for (auto it = pipes_.begin(); it != pipes_.end();) {
      Pipe& p = **it;
      if (p.dead) {
        CloseWithReset(p.client);
        CloseWithReset(p.server);
      } else if (p.up.shut && p.down.shut) {
        close(p.client);
        close(p.server);
      } else {
        ++it;
        continue;
      }
      it = pipes_.erase(it);
      --open_;
    }
  }
}

Status ReadProcessResources(int pid, ProcessResources* out) {
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream status(base + "/status");
  if (!status) return Status::NotFound("no process " + std::to_string(pid));
  std::string line;
  ProcessResources r;
  while (std::getline(status, line)) {
    std::istringstream in(line);
    std::string key;
    uint64_t value = 0;
    in >> key >> value;
    if (key == "VmRSS:") r.rss_kb = value;
    if (key == "VmHWM:") r.hwm_kb = value;
    if (key == "Threads:") r.threads = value;
  }
  DIR* d = opendir((base + "/fd").c_str());
  if (d == nullptr) return Status::FromErrno("opendir " + base + "/fd", errno);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++r.fds;
  }
  closedir(d);
  *out = r;
  return Status::OK();
}

}  // namespace mobilesync::testing
