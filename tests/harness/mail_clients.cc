#include "harness/mail_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace mobilesync::testing {

LineSocket::~LineSocket() { Close(); }

void LineSocket::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buf_.clear();
}

Status LineSocket::Connect(const std::string& host, uint16_t port, int timeout_ms) {
  Close();
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::InvalidArgument("not an IPv4 address", host);
  }
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Status::FromErrno("socket", errno);
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    Close();
    return Status::FromErrno("connect " + host + ":" + std::to_string(port), e);
  }
  return Status::OK();
}

Status LineSocket::Send(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("send", errno);
    off += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status LineSocket::Fill() {
  char tmp[65536];
  while (true) {
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Status::Timeout("no data from server");
    }
    if (n < 0) return Status::FromErrno("recv", errno);
    if (n == 0) return Status::IOError("connection closed by server");
    buf_.append(tmp, static_cast<size_t>(n));
    return Status::OK();
  }
}

Status LineSocket::ReadLine(std::string* line) {
  while (true) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      size_t end = (nl > 0 && buf_[nl - 1] == '\r') ? nl - 1 : nl;
      line->assign(buf_, 0, end);
      buf_.erase(0, nl + 1);
      return Status::OK();
    }
    if (buf_.size() > (64u << 20)) return Status::Corruption("line longer than 64 MiB");
    Status s = Fill();
    if (!s.ok()) return s;
  }
}

Status LineSocket::ReadBytes(size_t n, std::string* out) {
  while (buf_.size() < n) {
    Status s = Fill();
    if (!s.ok()) return s;
  }
  out->assign(buf_, 0, n);
  buf_.erase(0, n);
  return Status::OK();
}

std::string ImapResponse::Text() const {
  std::string out;
  for (const auto& l : untagged) {
    if (!out.empty()) out += "\n";
    out += l;
  }
  return out;
}

std::string ImapQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

Status ImapTestClient::Connect(const std::string& host, uint16_t port) {
  Status s = sock_.Connect(host, port);
  if (s.ok()) s = sock_.ReadLine(&greeting_);
  if (s.ok() && greeting_.rfind("* OK", 0) != 0) {
    return Status::Corruption("unexpected IMAP greeting", greeting_);
  }
  return s;
}

Status ImapTestClient::ReadResponse(const std::string& tag, ImapResponse* response) {
  *response = ImapResponse();
  std::string line;
  std::string current;
  while (true) {
    Status s = sock_.ReadLine(&line);
    if (!s.ok()) return s;
    current += line;
    // A line ending in {N} announces a literal of N bytes; the response
    // continues after it.
    if (!line.empty() && line.back() == '}') {
      size_t open = line.rfind('{');
      if (open != std::string::npos) {
        std::string num = line.substr(open + 1, line.size() - open - 2);
        if (!num.empty() && num.back() == '+') num.pop_back();
        char* end = nullptr;
        unsigned long long n = strtoull(num.c_str(), &end, 10);
        if (end && *end == '\0' && !num.empty()) {
          if (n > (256ull << 20)) return Status::Corruption("literal too large");
          std::string lit;
          s = sock_.ReadBytes(static_cast<size_t>(n), &lit);
          if (!s.ok()) return s;
          current += "\n" + lit;
          continue;
        }
      }
    }
    if (current.rfind(tag + " ", 0) == 0) {
      response->tagged = current.substr(tag.size() + 1);
      response->status = response->tagged.substr(0, response->tagged.find(' '));
      return Status::OK();
    }
    if (current.rfind("* ", 0) == 0) response->untagged.push_back(current.substr(2));
    current.clear();
  }
}

Status ImapTestClient::Command(const std::string& command, ImapResponse* response) {
  std::string tag = "t" + std::to_string(next_tag_++);
  Status s = sock_.Send(tag + " " + command + "\r\n");
  if (!s.ok()) return s;
  return ReadResponse(tag, response);
}

Status ImapTestClient::Login(const std::string& user, const std::string& password) {
  ImapResponse r;
  Status s = Command("LOGIN " + ImapQuote(user) + " " + ImapQuote(password), &r);
  if (!s.ok()) return s;
  if (!r.ok()) return Status::PermissionDenied("LOGIN failed", r.tagged);
  return Status::OK();
}

Status ImapTestClient::Append(const std::string& mailbox, const std::string& flags,
                              const std::string& message, ImapResponse* response) {
  std::string tag = "t" + std::to_string(next_tag_++);
  std::string cmd = tag + " APPEND " + ImapQuote(mailbox) + " " +
                    (flags.empty() ? "" : flags + " ") + "{" +
                    std::to_string(message.size()) + "+}\r\n" + message + "\r\n";
  Status s = sock_.Send(cmd);
  if (!s.ok()) return s;
  return ReadResponse(tag, response);
}

void ImapTestClient::Logout() {
  ImapResponse r;
  if (sock_.connected()) (void)Command("LOGOUT", &r);
  sock_.Close();
}

namespace {

// Reads an SMTP/LMTP reply (possibly multi-line) and returns its code.
Status ReadSmtpReply(LineSocket* sock, int* code, std::string* text) {
  std::string line;
  text->clear();
  while (true) {
    Status s = sock->ReadLine(&line);
    if (!s.ok()) return s;
    if (line.size() < 3) return Status::Corruption("short SMTP reply", line);
    *code = atoi(line.substr(0, 3).c_str());
    *text += line + "\n";
    if (line.size() == 3 || line[3] == ' ') return Status::OK();
  }
}

Status Expect(LineSocket* sock, int want, const std::string& step) {
  int code = 0;
  std::string text;
  Status s = ReadSmtpReply(sock, &code, &text);
  if (!s.ok()) return s;
  if (code != want) return Status::IOError("LMTP " + step + " refused", text);
  return Status::OK();
}

}  // namespace

Status DeliverLmtp(const std::string& host, uint16_t port, const std::string& recipient,
                   const std::string& message, const std::string& sender) {
  LineSocket sock;
  Status s = sock.Connect(host, port);
  if (s.ok()) s = Expect(&sock, 220, "greeting");
  if (s.ok()) s = sock.Send("LHLO test.example\r\n");
  if (s.ok()) s = Expect(&sock, 250, "LHLO");
  if (s.ok()) s = sock.Send("MAIL FROM:<" + sender + ">\r\n");
  if (s.ok()) s = Expect(&sock, 250, "MAIL FROM");
  if (s.ok()) s = sock.Send("RCPT TO:<" + recipient + ">\r\n");
  if (s.ok()) s = Expect(&sock, 250, "RCPT TO");
  if (s.ok()) s = sock.Send("DATA\r\n");
  if (s.ok()) s = Expect(&sock, 354, "DATA");
  if (!s.ok()) return s;
  // Normalise line ends to CRLF and dot-stuff.
  std::string data;
  data.reserve(message.size() + message.size() / 40 + 8);
  bool line_start = true;
  for (size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (line_start && c == '.') data += '.';
    if (c == '\n') {
      if (data.empty() || data.back() != '\r') data += '\r';
      data += '\n';
      line_start = true;
      continue;
    }
    data += c;
    line_start = false;
  }
  if (!line_start) data += "\r\n";
  data += ".\r\n";
  s = sock.Send(data);
  if (s.ok()) s = Expect(&sock, 250, "message");
  if (s.ok()) (void)sock.Send("QUIT\r\n");
  return s;
}

std::string MakeTestMessage(const std::string& subject, const std::string& body,
                            const std::string& to, const std::string& message_id) {
  static std::atomic<int> counter{0};
  std::string id = message_id.empty()
                       ? "<test." + std::to_string(getpid()) + "." +
                             std::to_string(counter++) + "@example.test>"
                       : message_id;
  return "From: Sender <sender@example.test>\r\n"
         "To: <" + to + ">\r\n"
         "Subject: " + subject + "\r\n"
         "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
         "Message-ID: " + id + "\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n"
         "\r\n" + body + "\r\n";
}

}  // namespace mobilesync::testing
