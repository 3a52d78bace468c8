#include "sync_server/device_client.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <strings.h>

namespace mobilesync::server {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status Connect(const std::string& host, uint16_t port, int timeout_ms, int* out) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (gai != 0) return Status::Unavailable("cannot resolve " + host, gai_strerror(gai));
  int err = ECONNREFUSED;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      freeaddrinfo(res);
      *out = fd;
      return Status::OK();
    }
    err = errno;
    close(fd);
  }
  freeaddrinfo(res);
  return Status::Unavailable(strerror(err));
}

}  // namespace

Status HttpCall(const std::string& host, uint16_t port, const std::string& method,
                const std::string& path, const std::string& bearer_token, const std::string& body,
                HttpResponse* response, int timeout_ms) {
  int raw = -1;
  Status s = Connect(host, port, timeout_ms, &raw);
  if (!s.ok()) return s;
  Fd fd(raw);
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
                    "Authorization: Bearer " + bearer_token + "\r\n" +
                    "Accept: application/json\r\nConnection: close\r\n";
  if (method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Status::Timeout("sending the request");
    // The server may answer (e.g. 413) and close before reading everything.
    if (n < 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Status::Timeout("waiting for the reply");
    if (n < 0 && errno == ECONNRESET && !in.empty()) break;
    if (n < 0) return Status::FromErrno("reading the reply", errno);
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > kMaxHttpResponse) return Status::Corruption("reply larger than 128 MiB");
  }
  size_t head_end = in.find("\r\n\r\n");
  if (in.compare(0, 9, "HTTP/1.1 ") != 0 && in.compare(0, 9, "HTTP/1.0 ") != 0) {
    return Status::Corruption("the reply is not HTTP");
  }
  if (head_end == std::string::npos) return Status::Corruption("truncated HTTP reply");
  response->status = atoi(in.c_str() + 9);
  std::string head = in.substr(0, head_end);
  response->body = in.substr(head_end + 4);
  // Honour Content-Length when present (the server closes anyway).
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    if (strncasecmp(head.c_str() + pos, "Content-Length:", 15) == 0) {
      size_t len = strtoull(head.c_str() + pos + 15, nullptr, 10);
      if (len < response->body.size()) response->body.resize(len);
      if (len > response->body.size()) return Status::Corruption("truncated HTTP body");
    }
  }
  return Status::OK();
}

}  // namespace mobilesync::server
