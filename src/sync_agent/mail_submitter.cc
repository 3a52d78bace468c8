#include "sync_agent/mail_submitter.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "common/event_loop.h"
#include "common/smtp_client.h"

namespace mobilesync::agent {

namespace {

constexpr size_t kMaxRecipients = 100;
// The header section we are willing to scan for To/Cc/Bcc: a real one is a
// few KB; a message whose headers never end is not worth parsing further.
constexpr size_t kMaxHeaderBytes = 256 * 1024;
constexpr size_t kMaxStderrBytes = 4096;

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return std::string(s.substr(b, e - b));
}

// Splits an address-list header value (RFC 5322 3.4, simplified): elements
// are separated by commas outside quoted strings, comments and angle
// brackets; "group: a, b;" contributes its members. Each element yields the
// text inside <...> when present, else the bare text without comments.
Status ParseAddressList(std::string_view value, std::vector<std::string>* out) {
  std::string bare;   // the element's text outside quotes/comments/<>
  std::string angle;  // the last <...> of the element
  bool has_angle = false;
  bool in_quote = false, in_angle = false;
  int comment = 0;
  auto flush = [&]() -> Status {
    std::string addr = has_angle ? Trim(angle) : Trim(bare);
    bare.clear();
    angle.clear();
    has_angle = false;
    if (addr.empty()) return Status::OK();  // "a,,b" or an empty group
    if (!IsPlainAddress(addr)) return Status::InvalidArgument("bad recipient address", addr);
    if (out->size() >= kMaxRecipients) {
      return Status::InvalidArgument("too many recipients (more than " +
                                     std::to_string(kMaxRecipients) + ")");
    }
    out->push_back(std::move(addr));
    return Status::OK();
  };
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (in_quote) {
      if (c == '\\' && i + 1 < value.size()) {
        ++i;
      } else if (c == '"') {
        in_quote = false;
      }
      continue;
    }
    if (comment > 0) {
      if (c == '\\' && i + 1 < value.size()) {
        ++i;
      } else if (c == '(') {
        if (++comment > 16) return Status::InvalidArgument("recipient comments nest too deep");
      } else if (c == ')') {
        --comment;
      }
      continue;
    }
    if (in_angle) {
      if (c == '>') {
        in_angle = false;
      } else {
        angle.push_back(c);
      }
      continue;
    }
    switch (c) {
      case '"': in_quote = true; break;
      case '(': comment = 1; break;
      case '<':
        in_angle = true;
        has_angle = true;
        angle.clear();
        break;
      case ':':  // "group:" -- what came before is the group's name
        bare.clear();
        break;
      case ',':
      case ';': {
        Status s = flush();
        if (!s.ok()) return s;
        break;
      }
      default: bare.push_back(c);
    }
  }
  if (in_quote || in_angle || comment > 0) {
    return Status::InvalidArgument(
        "unterminated quote, comment or <address> in a recipient header");
  }
  return flush();
}

}  // namespace

Status ExtractRecipients(const std::string& message, std::vector<std::string>* recipients,
                         std::string* without_bcc) {
  recipients->clear();
  without_bcc->clear();
  // Header fields: a line and its folded continuations (lines starting with
  // space or tab), up to the first empty line.
  size_t pos = 0;
  size_t body_start = std::string::npos;
  std::vector<std::pair<size_t, size_t>> fields;  // [begin, end) incl. line ends
  while (pos < message.size()) {
    if (pos > kMaxHeaderBytes) return Status::InvalidArgument("message header section too large");
    size_t eol = message.find('\n', pos);
    size_t next = eol == std::string::npos ? message.size() : eol + 1;
    std::string_view line(message.data() + pos, next - pos);
    if (line == "\n" || line == "\r\n") {
      body_start = pos;
      break;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !fields.empty()) {
      fields.back().second = next;
    } else {
      fields.emplace_back(pos, next);
    }
    pos = next;
  }
  std::set<std::string> seen;
  for (const auto& [b, e] : fields) {
    std::string_view field(message.data() + b, e - b);
    size_t colon = field.find(':');
    bool is_bcc = false;
    if (colon != std::string_view::npos) {
      std::string name = Trim(field.substr(0, colon));
      is_bcc = IEquals(name, "bcc");
      if (is_bcc || IEquals(name, "to") || IEquals(name, "cc")) {
        std::vector<std::string> addrs;
        Status s = ParseAddressList(field.substr(colon + 1), &addrs);
        if (!s.ok()) return s;
        for (std::string& a : addrs) {
          if (!seen.insert(a).second) continue;
          if (recipients->size() >= kMaxRecipients) {
            return Status::InvalidArgument("too many recipients (more than " +
                                           std::to_string(kMaxRecipients) + ")");
          }
          recipients->push_back(std::move(a));
        }
      }
    }
    if (!is_bcc) without_bcc->append(field);
  }
  if (body_start != std::string::npos) without_bcc->append(message, body_start, std::string::npos);
  if (recipients->empty()) return Status::InvalidArgument("message has no To, Cc or Bcc recipient");
  return Status::OK();
}

// One run of the sendmail program: stdin written from the loop, the first
// bytes of stderr kept for the error, the exit status polled (the agent has
// no SIGCHLD handler, and a poll every few ms costs nothing for the rare
// submission), a deadline that kills it.
struct SendmailRun {
  event_base* base = nullptr;
  pid_t pid = -1;
  int in_fd = -1;
  int err_fd = -1;
  std::string input;
  size_t written = 0;
  std::string err;
  EventPtr write_ev, read_ev, poll_timer, deadline;
  MailSubmitter::Done done;
  std::function<void(SendmailRun*)> finished;  // removes and deletes it
  std::string program;

  ~SendmailRun() {
    write_ev.reset();
    read_ev.reset();
    poll_timer.reset();
    deadline.reset();
    if (in_fd >= 0) close(in_fd);
    if (err_fd >= 0) close(err_fd);
    if (pid > 0) {  // abandoned: do not leave a zombie or a runaway child
      kill(pid, SIGKILL);
      int st;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }

  void CloseIn() {
    write_ev.reset();
    if (in_fd >= 0) close(in_fd);
    in_fd = -1;
  }

  static void OnWrite(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SendmailRun*>(arg);
    while (self->written < self->input.size()) {
      ssize_t n = write(self->in_fd, self->input.data() + self->written,
                        self->input.size() - self->written);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        // EPIPE: the program exited without reading it all; its exit
        // status tells why.
        break;
      }
      self->written += static_cast<size_t>(n);
    }
    self->CloseIn();
  }

  static void OnRead(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SendmailRun*>(arg);
    char buf[4096];
    for (;;) {
      ssize_t n = read(self->err_fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        self->read_ev.reset();
        close(self->err_fd);
        self->err_fd = -1;
        return;
      }
      size_t room = kMaxStderrBytes - std::min(kMaxStderrBytes, self->err.size());
      self->err.append(buf, std::min(room, static_cast<size_t>(n)));
    }
  }

  static void OnPoll(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SendmailRun*>(arg);
    int st = 0;
    pid_t r = waitpid(self->pid, &st, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return;
    self->pid = -1;
    if (self->err_fd >= 0) OnRead(-1, 0, self);  // what is left of stderr
    Status s;
    if (r < 0) {
      s = Status::FromErrno("sendmail: waitpid", errno);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
      s = self->written == self->input.size()
              ? Status::OK()
              : Status::IOError("sendmail: " + self->program +
                                " exited before reading the message");
    } else {
      std::string line = self->err.substr(0, self->err.find('\n'));
      std::string why = WIFEXITED(st) ? "exited with status " + std::to_string(WEXITSTATUS(st))
                                      : "killed by signal " + std::to_string(WTERMSIG(st));
      s = Status::Unavailable("sendmail: " + self->program + " " + why, line.substr(0, 300));
    }
    self->Finish(s);
  }

  static void OnDeadline(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SendmailRun*>(arg);
    // The destructor kills and reaps the child.
    self->Finish(Status::Timeout("sendmail: " + self->program + " did not finish in time"));
  }

  void Finish(const Status& s) {
    MailSubmitter::Done d = std::move(done);
    auto f = finished;
    f(this);  // deletes this
    if (d) d(s);
  }
};

struct MailSubmitter::Impl {
  event_base* base;
  MailSubmitterOptions options;
  std::unique_ptr<SmtpSender> smtp;
  std::set<SendmailRun*> runs;
  // Answers found without I/O still reach the caller from the loop (never
  // from inside Submit); owned here so that destruction drops them.
  std::vector<std::pair<Done, Status>> later;
  EventPtr later_ev;

  ~Impl() {
    for (SendmailRun* r : runs) delete r;
  }

  void Later(Done d, Status s) {
    later.emplace_back(std::move(d), std::move(s));
    if (!later_ev) later_ev.reset(event_new(base, -1, 0, &Impl::OnLater, this));
    timeval zero{0, 0};
    event_add(later_ev.get(), &zero);
  }
  static void OnLater(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    auto batch = std::move(self->later);
    self->later.clear();
    for (auto& [d, s] : batch) d(s);  // REQUIRES: no callback destroys us
  }

  void RunSendmail(const std::string& from, const std::string& message, Done done);
};

namespace {

// The envelope sender reaches argv and MAIL FROM: it must not look like an
// option or carry SMTP syntax.
bool ValidSender(const std::string& from) {
  if (from.empty() || from.size() > 254 || from[0] == '-') return false;
  for (unsigned char c : from) {
    if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == ',' || c == '\\')
      return false;
  }
  return true;
}

// "host", "host:port", "[v6]" or "[v6]:port".
bool ParseHostPort(const std::string& v, std::string* host, uint16_t* port) {
  std::string rest;
  if (!v.empty() && v[0] == '[') {
    size_t close = v.find(']');
    if (close == std::string::npos) return false;
    *host = v.substr(1, close - 1);
    rest = v.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return false;
  } else {
    size_t colon = v.find(':');
    *host = v.substr(0, colon);
    if (colon != std::string::npos) rest = v.substr(colon);
  }
  if (host->empty()) return false;
  if (rest.empty()) return true;
  rest = rest.substr(1);
  if (rest.empty() || rest.size() > 5 || rest.find_first_not_of("0123456789") != std::string::npos)
    return false;
  unsigned long p = std::strtoul(rest.c_str(), nullptr, 10);
  if (p == 0 || p > 65535) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

bool NonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

}  // namespace

void MailSubmitter::Impl::RunSendmail(const std::string& from, const std::string& message,
                                      Done done) {
  auto fail = [&](Status s) { Later(std::move(done), std::move(s)); };
  int in_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return fail(Status::FromErrno("sendmail: pipe", errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    close(in_pipe[0]);
    close(in_pipe[1]);
    return fail(Status::FromErrno("sendmail: pipe", e));
  }
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  const std::string& path = options.sendmail_path;
  std::vector<std::string> args = {path, "-i", "-t", "-f", from};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    if (devnull >= 0) dup2(devnull, 1);
    dup2(err_pipe[1], 2);
    signal(SIGPIPE, SIG_DFL);  // the agent ignores it; exec keeps SIG_IGN
    execv(path.c_str(), argv.data());
    static const char kMsg[] = "cannot execute sendmail_path\n";
    ssize_t ignored = write(2, kMsg, sizeof kMsg - 1);
    (void)ignored;
    _exit(127);
  }
  int fork_errno = errno;
  close(in_pipe[0]);
  close(err_pipe[1]);
  if (devnull >= 0) close(devnull);
  if (pid < 0) {
    close(in_pipe[1]);
    close(err_pipe[0]);
    return fail(Status::FromErrno("sendmail: fork", fork_errno));
  }
  auto* run = new SendmailRun();
  run->base = base;
  run->pid = pid;
  run->in_fd = in_pipe[1];
  run->err_fd = err_pipe[0];
  run->program = path;
  // A local sendmail reads a UNIX text stream: CRLF becomes LF.
  run->input.reserve(message.size());
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\r' && i + 1 < message.size() && message[i + 1] == '\n') continue;
    run->input.push_back(message[i]);
  }
  run->done = std::move(done);
  run->finished = [this](SendmailRun* r) {
    runs.erase(r);
    delete r;
  };
  runs.insert(run);
  NonBlocking(run->in_fd);
  NonBlocking(run->err_fd);
  run->write_ev.reset(
      event_new(base, run->in_fd, EV_WRITE | EV_PERSIST, &SendmailRun::OnWrite, run));
  run->read_ev.reset(event_new(base, run->err_fd, EV_READ | EV_PERSIST, &SendmailRun::OnRead, run));
  run->poll_timer.reset(event_new(base, -1, EV_PERSIST, &SendmailRun::OnPoll, run));
  run->deadline.reset(event_new(base, -1, 0, &SendmailRun::OnDeadline, run));
  timeval poll_tv{0, 10000};
  timeval dl{static_cast<time_t>(options.timeout_ms / 1000),
             static_cast<suseconds_t>(options.timeout_ms % 1000 * 1000)};
  event_add(run->write_ev.get(), nullptr);
  event_add(run->read_ev.get(), nullptr);
  event_add(run->poll_timer.get(), &poll_tv);
  event_add(run->deadline.get(), &dl);
}

MailSubmitter::MailSubmitter(event_base* base, MailSubmitterOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->base = base;
  impl_->options = std::move(options);
}

MailSubmitter::~MailSubmitter() = default;

void MailSubmitter::Submit(const std::string& from, const std::string& message, Done done) {
  auto later = [impl = impl_.get()](Done d, Status st) {
    impl->Later(std::move(d), std::move(st));
  };
  if (!ValidSender(from))
    return later(std::move(done), Status::InvalidArgument("submit: bad sender address", from));
  std::vector<std::string> rcpts;
  std::string data;
  Status s = ExtractRecipients(message, &rcpts, &data);
  if (!s.ok()) return later(std::move(done), Status::InvalidArgument("submit: " + s.message()));
  const MailSubmitterOptions& o = impl_->options;
  if (o.submission_host.empty()) {
    // sendmail -t reads the recipients itself and drops Bcc itself.
    impl_->RunSendmail(from, message, std::move(done));
    return;
  }
  if (!impl_->smtp) {
    std::string host;
    uint16_t port = 25;
    if (!ParseHostPort(o.submission_host, &host, &port)) {
      return later(std::move(done),
                   Status::InvalidArgument("submit: bad submission_host", o.submission_host));
    }
    int secs = static_cast<int>(std::max<uint64_t>(1, o.timeout_ms / 1000));
    impl_->smtp = std::make_unique<SmtpSender>(impl_->base, host, port, secs);
  }
  SmtpEnvelope env;
  env.from = from;
  env.to = rcpts[0];
  env.more_to.assign(rcpts.begin() + 1, rcpts.end());
  env.message = std::move(data);
  impl_->smtp->Send(std::move(env), std::move(done));
}

}  // namespace mobilesync::agent
