#include "sync_agent/control_server.h"

#include <event2/buffer.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace mobilesync::agent {

namespace {
// A connection that says nothing for this long is closed (but not while the
// client waits for an answer).
const timeval kIdleTimeout = {60, 0};
}  // namespace

struct ControlServer::Conn {
  ControlServer* server = nullptr;
  BuffereventPtr bev;
  bool in_handler = false;  // the handler is running (maybe answering now)
  bool interactive = false;
  bool busy = false;     // a request waits for its reply
  bool eof = false;      // the peer finished sending
  uid_t uid = 0;
  pid_t pid = 0;
  // Expires when the connection is destroyed: late replies are dropped.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

std::vector<std::string> SplitWords(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t b = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > b) out.push_back(line.substr(b, i - b));
  }
  return out;
}

bool ParseControlLine(const std::string& line, ControlRequest* req) {
  std::vector<std::string> words = SplitWords(line);
  if (words.empty()) return false;
  req->verb = words[0];
  for (char& ch : req->verb) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i] == "--json") {
      req->json = true;
    } else if (words[i] == "--wait") {
      req->wait = true;
    } else {
      req->args.push_back(words[i]);
    }
  }
  return true;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

ControlServer::~ControlServer() {
  listener_.reset();
  conns_.clear();
  if (!path_.empty()) unlink(path_.c_str());
}

Status ControlServer::Create(event_base* base, const std::string& path, const std::string& group,
                             Handler handler, std::unique_ptr<ControlServer>* out) {
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->base_ = base;
  s->handler_ = std::move(handler);
  if (!group.empty()) {
    struct group gr, *res = nullptr;
    std::vector<char> buf(16384);
    if (getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || res == nullptr)
      return Status::InvalidArgument("control_group: no such group", group);
    s->group_gid_ = gr.gr_gid;
  }
  sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("control socket path too long", path);
  memcpy(addr.sun_path, path.c_str(), path.size());

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::FromErrno("socket(AF_UNIX)", errno);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      close(fd);
      return Status::InvalidArgument("control socket path exists and is not a socket", path);
    }
    // A live agent answers: never steal its socket.
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 &&
                connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) close(probe);
    if (live) {
      close(fd);
      return Status::Unavailable("another agent is listening on the control socket", path);
    }
    unlink(path.c_str());
  }
  // The umask makes the socket 0660 from its creation (no window where it
  // is wider); chmod then sets it exactly, whatever the umask was.
  mode_t old = umask(0117);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  umask(old);
  if (rc != 0) {
    close(fd);
    return Status::FromErrno("bind(" + path + ")", err);
  }
  s->path_ = path;
  if (chmod(path.c_str(), 0660) != 0) {
    err = errno;
    close(fd);
    return Status::FromErrno("chmod(" + path + ")", err);
  }
  if (s->group_gid_ != static_cast<gid_t>(-1) &&
      chown(path.c_str(), static_cast<uid_t>(-1), s->group_gid_) != 0) {
    err = errno;
    close(fd);
    return Status::FromErrno("chown(" + path + ", group " + group + ")", err);
  }
  if (listen(fd, 128) != 0) {
    err = errno;
    close(fd);
    return Status::FromErrno("listen(" + path + ")", err);
  }
  s->listener_.reset(evconnlistener_new(base, &ControlServer::AcceptCb, s.get(),
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd));
  if (!s->listener_) {
    close(fd);
    return Status::IOError("cannot listen on the control socket", path);
  }
  *out = std::move(s);
  return Status::OK();
}

bool ControlServer::PeerAllowed(int fd, uid_t* uid, pid_t* pid, std::string* why) const {
  ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    *why = std::string("SO_PEERCRED failed: ") + strerror(errno);
    return false;
  }
  *uid = cred.uid;
  *pid = cred.pid;
  if (cred.uid == 0 || cred.uid == geteuid()) return true;
  if (group_gid_ == static_cast<gid_t>(-1)) {
    *why = "not root, not the agent's user, and no control_group is set";
    return false;
  }
  if (cred.gid == group_gid_) return true;
  // Supplementary groups of the peer's user.
  struct passwd pw, *res = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(cred.uid, &pw, buf.data(), buf.size(), &res) == 0 && res != nullptr) {
    int n = 64;
    std::vector<gid_t> groups(static_cast<size_t>(n));
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0 && n > 64) {
      groups.resize(static_cast<size_t>(n));
      getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n);
    }
    for (int i = 0; i < n && i < static_cast<int>(groups.size()); ++i)
      if (groups[static_cast<size_t>(i)] == group_gid_) return true;
  }
  *why = "not a member of control_group";
  return false;
}

void ControlServer::AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<ControlServer*>(arg);
  uid_t uid = 0;
  pid_t pid = 0;
  std::string why;
  if (!self->PeerAllowed(fd, &uid, &pid, &why)) {
    LogWarning("", "control socket: refused uid " + std::to_string(uid) + " pid " +
                       std::to_string(pid) + ": " + why);
    close(fd);
    return;
  }
  bufferevent* bev = bufferevent_socket_new(self->base_, fd,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (bev == nullptr) {
    close(fd);
    return;
  }
  auto c = std::make_unique<Conn>();
  c->bev.reset(bev);
  c->uid = uid;
  c->pid = pid;
  c->server = self;
  Conn* raw = c.get();
  self->conns_[raw] = std::move(c);
  bufferevent_setcb(bev, &ControlServer::ReadCb, &ControlServer::WriteCb,
                    &ControlServer::EventCb, raw);
  // A client that connects and says nothing must not pin a connection.
  bufferevent_set_timeouts(bev, &kIdleTimeout, &kIdleTimeout);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void ControlServer::ReadCb(bufferevent*, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->server->ProcessLines(c);
}

void ControlServer::WriteCb(bufferevent*, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  c->server->MaybeClose(c);
}

void ControlServer::EventCb(bufferevent*, short what, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  ControlServer* self = c->server;
  if (what & BEV_EVENT_EOF) {
    // Lines already received still count (the plugin writes and closes).
    c->eof = true;
    std::weak_ptr<bool> alive = c->alive;
    self->ProcessLines(c);
    if (!alive.expired()) self->MaybeClose(c);
    return;
  }
  // Errors (a reader that went away: EPIPE) and idle time-outs end the
  // connection quietly: nothing the agent could do about them.
  self->Destroy(c);
}

void ControlServer::ProcessLines(Conn* c) {
  evbuffer* in = bufferevent_get_input(c->bev.get());
  while (!c->busy) {
    size_t n = 0;
    char* line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
    if (line == nullptr) {
      if (evbuffer_get_length(in) > kMaxLineBytes) {
        LogWarning("", "control socket: request line too long; closing");
        Destroy(c);
        return;
      }
      if (c->eof && evbuffer_get_length(in) > 0) {
        // A last line without its newline.
        size_t len = evbuffer_get_length(in);
        std::string rest(len, '\0');
        evbuffer_remove(in, rest.data(), len);
        HandleLine(c, rest);
        continue;
      }
      return;
    }
    std::string text(line, n);
    free(line);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.size() > kMaxLineBytes) {
      LogWarning("", "control socket: request line too long; closing");
      Destroy(c);
      return;
    }
    std::weak_ptr<bool> alive = c->alive;
    HandleLine(c, text);
    if (alive.expired()) return;
  }
}

void ControlServer::HandleLine(Conn* c, const std::string& line) {
  ControlRequest req;
  if (!ParseControlLine(line, &req)) return;
  req.interactive = c->interactive;
  req.peer_uid = c->uid;
  if (req.verb == "hello") {
    c->interactive = true;
    Reply(c, ControlReply::Ok("mobilesync-agent control 1"));
    return;
  }
  if (!c->interactive && req.verb != "poke" && req.verb != "sync") {
    LogWarning("", "control socket: ignored '" + EscapeForLog(req.verb, 32) +
                       "' before hello (pid " + std::to_string(c->pid) + ")");
    return;
  }
  c->busy = true;
  // The client now waits for us (`sync --wait` lasts as long as the
  // session): its silence is not idleness.
  bufferevent_set_timeouts(c->bev.get(), nullptr, &kIdleTimeout);
  std::weak_ptr<bool> alive = c->alive;
  Respond respond = [this, c, alive](ControlReply r) {
    if (alive.expired()) return;  // the client went away meanwhile
    c->busy = false;
    bufferevent_set_timeouts(c->bev.get(), &kIdleTimeout, &kIdleTimeout);
    if (c->interactive) Reply(c, r);
    // Answered inside the handler: the ProcessLines loop below us goes on
    // (no recursion, however many lines a client pipelines).
    if (c->in_handler) return;
    ProcessLines(c);
    if (!alive.expired()) MaybeClose(c);
  };
  c->in_handler = true;
  handler_(req, std::move(respond));
  if (!alive.expired()) c->in_handler = false;
}

void ControlServer::Reply(Conn* c, const ControlReply& r) {
  const std::string out = FormatControlReply(r);
  bufferevent_write(c->bev.get(), out.data(), out.size());
}

std::string FormatControlReply(const ControlReply& r) {
  std::string out;
  if (!r.status.ok()) {
    std::string msg = r.status.message();
    for (char& ch : msg)
      if (ch == '\n' || ch == '\r') ch = ' ';
    out = "-ERR " + msg + "\n";
  } else {
    out = "+OK\n";
    size_t i = 0;
    const std::string& b = r.body;
    while (i < b.size()) {
      size_t nl = b.find('\n', i);
      if (nl == std::string::npos) nl = b.size();
      if (b[i] == '.') out += ".";  // dot-stuffing
      out.append(b, i, nl - i);
      out += "\n";
      i = nl + 1;
    }
    out += ".\n";
  }
  return out;
}

void ControlServer::MaybeClose(Conn* c) {
  if (!c->eof || c->busy) return;
  if (evbuffer_get_length(bufferevent_get_output(c->bev.get())) > 0) return;
  Destroy(c);
}

void ControlServer::Destroy(Conn* c) {
  bufferevent_setcb(c->bev.get(), nullptr, nullptr, nullptr, nullptr);
  conns_.erase(c);
}

}  // namespace mobilesync::agent
