#include "sync_agent/imap/imap_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "sync_agent/imap/uid_set.h"

namespace mobilesync::agent::imap {
namespace {

timeval ToTimeval(uint64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return s;
}

bool StartsWithNoCase(const std::string& s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

CommandResult ResultFrom(const ImapResponse& r) {
  CommandResult out;
  out.code = r.code;
  out.text = r.text;
  if (r.name == "NO") {
    out.status = Status::Aborted("IMAP NO", r.text);
  } else if (r.name == "BAD") {
    out.status = Status::InvalidArgument("IMAP BAD", r.text);
  }
  return out;
}

CommandResult Failed(const Status& s) {
  CommandResult out;
  out.status = s;
  return out;
}

std::vector<std::string> AtomsOf(const ImapValue& list) {
  std::vector<std::string> out;
  for (const ImapValue& v : list.list)
    if (v.is_text()) out.push_back(v.text);
  return out;
}

}  // namespace

bool ListEntry::HasFlag(std::string_view flag) const {
  for (const std::string& f : flags) {
    if (f.size() == flag.size() && Upper(f) == Upper(std::string(flag))) return true;
  }
  return false;
}

// --- CommandBuilder -----------------------------------------------------------

CommandBuilder& CommandBuilder::Raw(std::string_view text) {
  chunks_.back().append(text.data(), text.size());
  return *this;
}

CommandBuilder& CommandBuilder::String(std::string_view s) {
  std::string a = ImapAstring(s);
  if (a[0] == '"') return Raw(a);
  return Literal(s);
}

CommandBuilder& CommandBuilder::Literal(std::string_view bytes) {
  std::string head = "{" + std::to_string(bytes.size()) + (literal_plus_ ? "+}\r\n" : "}\r\n");
  chunks_.back() += head;
  // Without LITERAL+ the bytes may only follow the server's "+".
  if (!literal_plus_) chunks_.emplace_back();
  chunks_.back().append(bytes.data(), bytes.size());
  return *this;
}

std::vector<std::string> CommandBuilder::Finish() {
  chunks_.back() += "\r\n";
  return std::move(chunks_);
}

// --- Connection ---------------------------------------------------------------

ImapClient::ImapClient(event_base* base, ImapClientOptions options)
    : base_(base), options_(std::move(options)), parser_(options_.limits) {}

ImapClient::~ImapClient() {
  // Callbacks below must not use this client (see the header).
  on_close_ = nullptr;
  Fail(Status::Unavailable("IMAP client destroyed"), false);
}

void ImapClient::Connect(std::function<void(const Status&)> done) {
  connect_done_ = std::move(done);
  state_ = State::kConnecting;
  connect_timer_.reset(evtimer_new(base_, &ImapClient::ConnectTimeoutCb, this));
  timeval tv = ToTimeval(options_.connect_timeout_ms);
  Status s;
  bufferevent* bev = nullptr;
  const int flags = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
  if (options_.use_tls) {
    SslPtr ssl;
    s = options_.tls ? options_.tls->NewSsl(options_.host, &ssl)
                     : Status::InvalidArgument("IMAP over TLS needs a TLS context");
    if (s.ok()) {
      // Ownership of the SSL passes to libevent here, even on failure.
      bev = bufferevent_openssl_socket_new(base_, -1, ssl.release(), BUFFEREVENT_SSL_CONNECTING,
                                           flags);
      if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
  } else {
    bev = bufferevent_socket_new(base_, -1, flags);
  }
  if (s.ok() && bev == nullptr) s = Status::IOError("cannot create a bufferevent");
  if (s.ok()) {
    bev_.reset(bev);
    // Message bodies come in batches: read up to 1 MiB per callback (the
    // default is 16 KiB).
    bufferevent_set_max_single_read(bev, 1u << 20);
    bufferevent_setcb(bev, &ImapClient::ReadCb, &ImapClient::WriteCb, &ImapClient::EventCb, this);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    // The host is a literal address or a local name: a blocking resolution
    // (no evdns base) is acceptable for Dovecot on this host.
    if (bufferevent_socket_connect_hostname(bev, nullptr, AF_UNSPEC, options_.host.c_str(),
                                            options_.port) != 0) {
      s = Status::IOError("cannot connect to IMAP server",
                          options_.host + ":" + std::to_string(options_.port));
    }
  }
  if (!s.ok()) {
    // Answer from the loop, never from inside Connect().
    pending_connect_error_ = s;
    tv = ToTimeval(0);
  }
  evtimer_add(connect_timer_.get(), &tv);
}

void ImapClient::ConnectTimeoutCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ImapClient*>(arg);
  if (!self->pending_connect_error_.ok()) {
    self->Fail(self->pending_connect_error_, false);
    return;
  }
  self->Fail(Status::Timeout("IMAP connect/greeting timed out",
                             self->options_.host + ":" + std::to_string(self->options_.port)),
             false);
}

void ImapClient::FinishConnect(const Status& s) {
  if (connect_timer_) evtimer_del(connect_timer_.get());
  if (!s.ok()) {
    Fail(s, false);
    return;
  }
  state_ = State::kReady;
  auto done = std::move(connect_done_);
  connect_done_ = nullptr;
  std::weak_ptr<bool> guard = alive_;
  if (done) done(Status::OK());
  if (guard.expired()) return;
  SendPending();
}

void ImapClient::Fail(const Status& why, bool notify_close) {
  if (state_ == State::kClosed && pending_.empty() && in_flight_.empty() && !connect_done_) return;
  State was = state_;
  state_ = State::kClosed;
  if (bev_) {
    // Drop callbacks first: freeing may flush deferred ones otherwise.
    bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
    bev_.reset();
  }
  connect_timer_.reset();
  awaiting_continuation_ = nullptr;
  idling_ = nullptr;
  idle_handler_ = nullptr;
  if (was != State::kClosed && !why.ok())
    LogDebug(options_.log_user, "IMAP connection closed: " + why.ToString());
  std::weak_ptr<bool> guard = alive_;
  if (connect_done_) {
    auto done = std::move(connect_done_);
    connect_done_ = nullptr;
    done(why.ok() ? Status::Unavailable("IMAP connection closed") : why);
    if (guard.expired()) return;
  }
  // Every command gets exactly one answer: in-flight first, then pending.
  std::deque<std::unique_ptr<Cmd>> all;
  all.swap(in_flight_);
  for (auto& c : pending_) all.push_back(std::move(c));
  pending_.clear();
  CommandResult r = Failed(why.ok() ? Status::Unavailable("IMAP connection closed") : why);
  for (auto& c : all) {
    if (c->done) c->done(r);
    if (guard.expired()) return;
  }
  if (notify_close && was != State::kClosed && on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(why);
  }
}

void ImapClient::Close(const Status& why) {
  Fail(why, false);
}

void ImapClient::EventCb(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<ImapClient*>(arg);
  std::string where = self->options_.host + ":" + std::to_string(self->options_.port);
  if (what & BEV_EVENT_CONNECTED) {
    self->state_ = State::kGreeting;
    return;
  }
  if (what & BEV_EVENT_TIMEOUT) {
    self->Fail(Status::Timeout("IMAP server did not answer in time", where), true);
    return;
  }
  if (what & BEV_EVENT_EOF) {
    if (self->logging_out_) {
      self->Fail(Status::OK(), true);
    } else {
      self->Fail(Status::Unavailable(self->got_bye_ ? "IMAP server said BYE and closed"
                                                    : "IMAP server closed the connection",
                                     where),
                 true);
    }
    return;
  }
  if (what & BEV_EVENT_ERROR) {
    int err = EVUTIL_SOCKET_ERROR();
    unsigned long ssl_err = bufferevent_get_openssl_error(bev);
    std::string reason;
    if (self->options_.use_tls && (ssl_err != 0 || self->state_ == State::kConnecting)) {
      reason = DescribeTlsFailure(bufferevent_openssl_get_ssl(bev), ssl_err);
      while (bufferevent_get_openssl_error(bev) != 0) {
      }
    } else {
      reason = err ? strerror(err) : "connection error";
    }
    self->Fail(Status::IOError("IMAP connection to " + where + " failed", reason), true);
  }
}

void ImapClient::WriteCb(bufferevent*, void* arg) {
  static_cast<ImapClient*>(arg)->SendPending();
}

void ImapClient::ReadCb(bufferevent* bev, void* arg) {
  auto* self = static_cast<ImapClient*>(arg);
  std::weak_ptr<bool> guard = self->alive_;
  evbuffer* in = bufferevent_get_input(bev);
  size_t len = evbuffer_get_length(in);
  if (len == 0) return;
  evbuffer_iovec vec[16];
  while (evbuffer_get_length(in) > 0) {
    int n = evbuffer_peek(in, -1, nullptr, vec, 16);
    size_t used = 0;
    for (int i = 0; i < n && i < 16; ++i) {
      self->parser_.Feed(
          std::string_view(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len));
      used += vec[i].iov_len;
    }
    evbuffer_drain(in, used);
  }
  while (self->state_ != State::kClosed) {
    ImapResponse r;
    ImapParser::Result res;
    Status s = self->parser_.Next(&r, &res);
    if (!s.ok()) {
      self->Fail(s, true);
      return;
    }
    if (res == ImapParser::Result::kNeedMore) break;
    if (!self->Dispatch(std::move(r))) return;
    if (guard.expired()) return;
  }
}

// --- Commands -----------------------------------------------------------------

void ImapClient::Enqueue(std::unique_ptr<Cmd> cmd) {
  if (state_ == State::kClosed || state_ == State::kIdle) {
    // Answer from the loop: callers may hold state they set after queueing.
    std::weak_ptr<bool> guard = alive_;
    auto* holder = new std::unique_ptr<Cmd>(std::move(cmd));
    auto* ctx = new std::pair<std::weak_ptr<bool>, std::unique_ptr<Cmd>*>(guard, holder);
    timeval zero = {0, 0};
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
          auto* c = static_cast<std::pair<std::weak_ptr<bool>, std::unique_ptr<Cmd>*>*>(arg);
          std::unique_ptr<Cmd> cmd = std::move(*c->second);
          delete c->second;
          delete c;
          if (cmd->done) cmd->done(Failed(Status::Unavailable("IMAP connection is closed")));
        },
        ctx, &zero);
    return;
  }
  pending_.push_back(std::move(cmd));
  SendPending();
}

bool ImapClient::CanSend() const {
  if (state_ != State::kReady || pending_.empty() || !bev_) return false;
  if (awaiting_continuation_ != nullptr || idling_ != nullptr) return false;
  if (in_flight_.size() >= options_.max_in_flight) return false;
  for (const auto& c : in_flight_)
    if (c->idle) return false;
  // IDLE runs alone: nothing may be in flight before it.
  if (pending_.front()->idle && !in_flight_.empty()) return false;
  return evbuffer_get_length(bufferevent_get_output(bev_.get())) < options_.output_watermark;
}

void ImapClient::SendPending() {
  while (CanSend()) {
    std::unique_ptr<Cmd> cmd = std::move(pending_.front());
    pending_.pop_front();
    cmd->tag = "m" + std::to_string(next_tag_++);
    Cmd* raw = cmd.get();
    in_flight_.push_back(std::move(cmd));
    LogDebug(options_.log_user, "IMAP > " + raw->tag + " " + raw->log_text);
    SendChunk(raw);
  }
  ArmTimeout();
}

void ImapClient::SendChunk(Cmd* cmd) {
  evbuffer* out = bufferevent_get_output(bev_.get());
  if (cmd->next_chunk == 0) {
    evbuffer_add(out, cmd->tag.data(), cmd->tag.size());
    evbuffer_add(out, " ", 1);
  }
  const std::string& chunk = cmd->chunks[cmd->next_chunk];
  evbuffer_add(out, chunk.data(), chunk.size());
  ++cmd->next_chunk;
  // IDLE waits for "+" to know it is idling; a synchronising literal waits
  // for "+" before its bytes.
  if (cmd->idle || cmd->next_chunk < cmd->chunks.size()) awaiting_continuation_ = cmd;
  // The chunk's copy is no longer needed (a 10 MB APPEND would be held
  // twice until the answer otherwise).
  std::string().swap(cmd->chunks[cmd->next_chunk - 1]);
}

void ImapClient::ArmTimeout() {
  if (!bev_) return;
  bool expecting = !in_flight_.empty() && idling_ == nullptr;
  if (expecting) {
    timeval tv = ToTimeval(options_.command_timeout_ms);
    bufferevent_set_timeouts(bev_.get(), &tv, &tv);
  } else {
    bufferevent_set_timeouts(bev_.get(), nullptr, nullptr);
  }
}

void ImapClient::UpdateCapabilities(const std::vector<ImapValue>& values, size_t from) {
  caps_.clear();
  for (size_t i = from; i < values.size(); ++i)
    if (values[i].is_atom()) caps_.insert(Upper(values[i].text));
}

bool ImapClient::HasCapability(const std::string& cap) const {
  return caps_.count(Upper(cap)) != 0;
}

bool ImapClient::Dispatch(ImapResponse&& r) {
  std::weak_ptr<bool> guard = alive_;
  if (r.IsStatus() && r.CodeName() == "CAPABILITY") UpdateCapabilities(r.code, 1);
  if (state_ == State::kGreeting) {
    if (r.type != ImapResponse::Type::kUntagged || (r.name != "OK" && r.name != "PREAUTH")) {
      Fail(Status::Unavailable("IMAP server refused the connection", r.text), false);
      return !guard.expired();
    }
    if (!caps_.empty()) {
      FinishConnect(Status::OK());
      return !guard.expired();
    }
    // Not in the greeting: ask, and finish connecting with the answer.
    state_ = State::kReady;
    auto cmd = std::make_unique<Cmd>();
    cmd->chunks = {"CAPABILITY\r\n"};
    cmd->log_text = "CAPABILITY";
    cmd->done = [this](const CommandResult& res) {
      state_ = State::kGreeting;  // FinishConnect moves to kReady
      FinishConnect(res.status);
    };
    // Only this command may run before Connect's callback.
    pending_.push_front(std::move(cmd));
    SendPending();
    return !guard.expired();
  }
  switch (r.type) {
    case ImapResponse::Type::kContinuation: {
      Cmd* cmd = awaiting_continuation_;
      if (cmd == nullptr) {
        Fail(Status::Corruption("IMAP: unexpected continuation request"), true);
        return !guard.expired();
      }
      awaiting_continuation_ = nullptr;
      if (cmd->idle) {
        idling_ = cmd;
        ArmTimeout();
        if (idle_done_requested_) IdleDone();
      } else {
        SendChunk(cmd);
      }
      SendPending();
      return true;
    }
    case ImapResponse::Type::kTagged: return HandleTagged(std::move(r));
    case ImapResponse::Type::kUntagged: break;
  }
  if (r.name == "BYE") got_bye_ = true;
  if (r.name == "CAPABILITY") UpdateCapabilities(r.args, 0);
  if (idling_ != nullptr && idle_handler_) {
    HandleUntaggedDefault(r);
    auto handler = idle_handler_;
    handler(r);
    return !guard.expired();
  }
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    Cmd* c = in_flight_[i].get();
    if (!c->untagged) continue;
    auto handler = c->untagged;  // a copy: the handler may end the command
    bool used = handler(r);
    if (guard.expired()) return false;
    if (used) return true;
  }
  HandleUntaggedDefault(r);
  return true;
}

bool ImapClient::HandleTagged(ImapResponse&& r) {
  std::weak_ptr<bool> guard = alive_;
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                         [&](const std::unique_ptr<Cmd>& c) { return c->tag == r.tag; });
  if (it == in_flight_.end()) {
    Fail(Status::Corruption("IMAP: answer to an unknown tag", r.tag), true);
    return !guard.expired();
  }
  std::unique_ptr<Cmd> cmd = std::move(*it);
  in_flight_.erase(it);
  if (awaiting_continuation_ == cmd.get()) awaiting_continuation_ = nullptr;
  if (idling_ == cmd.get() || cmd->idle) {
    idling_ = nullptr;
    idle_handler_ = nullptr;
    idle_done_requested_ = false;
  }
  if (r.name != "OK")
    LogDebug(options_.log_user, "IMAP < " + r.tag + " " + r.name + " " + EscapeForLog(r.text, 200));
  CommandResult res = ResultFrom(r);
  if (cmd->done) cmd->done(res);
  if (guard.expired()) return false;
  SendPending();
  return true;
}

void ImapClient::HandleUntaggedDefault(const ImapResponse& r) {
  uint64_t n = 0;
  if (r.name == "EXISTS" && r.number) {
    mailbox_.exists = *r.number;
  } else if (r.name == "EXPUNGE" && r.number) {
    if (mailbox_.exists > 0) --mailbox_.exists;
  } else if (r.name == "FLAGS" && !r.args.empty() && r.args[0].is_list()) {
    mailbox_.flags = AtomsOf(r.args[0]);
  } else if (r.name == "OK" && r.code.size() >= 2 && r.code[1].ToNumber(&n)) {
    std::string code = r.CodeName();
    if (code == "UIDVALIDITY") mailbox_.uidvalidity = n;
    if (code == "UIDNEXT") mailbox_.uidnext = n;
    if (code == "HIGHESTMODSEQ") mailbox_.highestmodseq = n;
  }
}

void ImapClient::Command(std::vector<std::string> chunks, Done done, UntaggedHandler untagged) {
  auto cmd = std::make_unique<Cmd>();
  std::string first = chunks.empty() ? "" : chunks[0];
  // Log the command word(s) only: arguments may be message bodies or secrets.
  cmd->log_text = first.substr(0, std::min<size_t>(first.find_first_of("{\r"), 200));
  cmd->chunks = std::move(chunks);
  cmd->done = std::move(done);
  cmd->untagged = std::move(untagged);
  Enqueue(std::move(cmd));
}

void ImapClient::Command(std::string_view text, Done done, UntaggedHandler untagged) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw(text);
  Command(b.Finish(), std::move(done), std::move(untagged));
}

void ImapClient::Login(const std::string& user, const std::string& password, Done done) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw("LOGIN ").String(user).Raw(" ").String(password);
  auto cmd = std::make_unique<Cmd>();
  cmd->chunks = b.Finish();
  cmd->log_text = "LOGIN " + EscapeForLog(user, 300) + " <password>";
  cmd->done = [this, done = std::move(done)](const CommandResult& r) {
    // Capabilities change after login; Dovecot sends them in the OK code.
    if (r.status.ok() && r.code.size() > 1 && Upper(r.code[0].text) == "CAPABILITY")
      UpdateCapabilities(r.code, 1);
    done(r);
  };
  Enqueue(std::move(cmd));
}

void ImapClient::LoginAsMaster(const std::string& user, const std::string& master_user,
                               const std::string& master_password, Done done) {
  Login(user + "*" + master_user, master_password, std::move(done));
}

void ImapClient::Capability(Done done) {
  Command("CAPABILITY", std::move(done));
}

void ImapClient::Select(const std::string& mailbox, bool read_only, bool condstore,
                        std::function<void(const CommandResult&, const MailboxInfo&)> done) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw(read_only ? "EXAMINE " : "SELECT ").String(mailbox);
  if (condstore) b.Raw(" (CONDSTORE)");
  mailbox_ = MailboxInfo();
  Command(b.Finish(), [this, done = std::move(done)](const CommandResult& r) {
    MailboxInfo info = mailbox_;
    std::string code = r.code.empty() ? "" : Upper(r.code[0].text);
    info.read_only = code == "READ-ONLY";
    done(r, info);
  });
}

void ImapClient::UidFetch(const std::string& uid_set, const std::string& items,
                          std::function<void(FetchedMessage&&)> on_message, Done done) {
  // Pipelined FETCH commands are answered interleaved: each claims only the
  // UIDs it asked for (a set with "*" claims every FETCH with a UID).
  auto ranges = std::make_shared<UidRanges>();
  if (!ranges->Parse(uid_set)) ranges.reset();
  auto handler = [on_message = std::move(on_message), ranges](const ImapResponse& r) {
    if (r.name != "FETCH" || !r.number || r.args.empty() || !r.args[0].is_list()) return false;
    const std::vector<ImapValue>& kv = r.args[0].list;
    FetchedMessage m;
    m.seq = *r.number;
    bool has_uid = false;
    for (size_t i = 0; i + 1 < kv.size(); i += 2) {
      if (!kv[i].is_atom()) continue;
      const std::string key = Upper(kv[i].text);
      const ImapValue& v = kv[i + 1];
      if (key == "UID") {
        has_uid = v.ToNumber(&m.uid);
      } else if (key == "FLAGS" && v.is_list()) {
        m.flags = AtomsOf(v);
        m.has_flags = true;
      } else if (key == "INTERNALDATE" && v.is_text()) {
        m.internaldate = v.text;
      } else if (key == "RFC822.SIZE") {
        (void)v.ToNumber(&m.size);  // a bad size leaves 0: informational
      } else if (key == "MODSEQ" && v.is_list() && !v.list.empty()) {
        (void)v.list[0].ToNumber(&m.modseq);
      } else if (key == "X-GUID" && v.is_text()) {
        m.guid = v.text;
      } else if (StartsWithNoCase(key, "BODY[") || key == "RFC822") {
        m.has_body = v.is_string();
        if (v.is_string()) m.body = v.text;
      }
    }
    // A FETCH without UID is an unsolicited flag update, not our answer.
    if (!has_uid || (ranges && !ranges->Contains(m.uid))) return false;
    on_message(std::move(m));
    return true;
  };
  Command("UID FETCH " + uid_set + " " + items, std::move(done), std::move(handler));
}

void ImapClient::UidStore(const std::string& uid_set, const std::string& action,
                          const std::string& flags, Done done) {
  auto handler = [](const ImapResponse& r) { return r.name == "FETCH"; };
  Command("UID STORE " + uid_set + " " + action + " (" + flags + ")", std::move(done),
          std::move(handler));
}

void ImapClient::UidMove(const std::string& uid_set, const std::string& mailbox, Done done) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw("UID MOVE " + uid_set + " ").String(mailbox);
  Command(b.Finish(), std::move(done));
}

namespace {
bool ParseCopyUid(const std::vector<ImapValue>& code, CopyUid* out) {
  if (code.size() < 4 || !code[0].is_atom() || Upper(code[0].text) != "COPYUID") return false;
  if (!code[1].ToNumber(&out->uidvalidity) || !code[2].is_text() || !code[3].is_text())
    return false;
  out->source = code[2].text;
  out->dest = code[3].text;
  return true;
}
}  // namespace

void ImapClient::UidMoveWithUids(const std::string& uid_set, const std::string& mailbox,
                                 std::function<void(const CommandResult&, const CopyUid&)> done) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw("UID MOVE " + uid_set + " ").String(mailbox);
  auto copyuid = std::make_shared<CopyUid>();
  auto handler = [copyuid](const ImapResponse& r) {
    if (r.name != "OK" || r.CodeName() != "COPYUID") return false;
    return ParseCopyUid(r.code, copyuid.get());
  };
  Command(
      b.Finish(),
      [copyuid, done = std::move(done)](const CommandResult& r) {
        if (r.status.ok() && copyuid->dest.empty()) (void)ParseCopyUid(r.code, copyuid.get());
        done(r, *copyuid);
      },
      std::move(handler));
}

void ImapClient::UidExpunge(const std::string& uid_set, Done done) {
  Command("UID EXPUNGE " + uid_set, std::move(done));
}

void ImapClient::Append(const std::string& mailbox, const std::string& flags,
                        const std::string& internaldate, const std::string& message,
                        std::function<void(const CommandResult&, const AppendUid&)> done) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw("APPEND ").String(mailbox);
  if (!flags.empty()) b.Raw(" " + flags);
  if (!internaldate.empty()) b.Raw(" ").String(internaldate);
  b.Raw(" ").Literal(message);
  auto cmd = std::make_unique<Cmd>();
  cmd->chunks = b.Finish();
  cmd->log_text =
      "APPEND " + EscapeForLog(mailbox, 200) + " {" + std::to_string(message.size()) + "}";
  cmd->done = [done = std::move(done)](const CommandResult& r) {
    AppendUid uid;
    if (r.status.ok() && r.code.size() >= 3 && Upper(r.code[0].text) == "APPENDUID") {
      (void)r.code[1].ToNumber(&uid.uidvalidity);  // zeros: no UIDPLUS answer
      (void)r.code[2].ToNumber(&uid.uid);
    }
    done(r, uid);
  };
  Enqueue(std::move(cmd));
}

void ImapClient::List(std::function<void(const CommandResult&, std::vector<ListEntry>&&)> done) {
  auto entries = std::make_shared<std::vector<ListEntry>>();
  auto handler = [entries](const ImapResponse& r) {
    if (r.name != "LIST" || r.args.size() < 3 || !r.args[0].is_list()) return false;
    ListEntry e;
    e.flags = AtomsOf(r.args[0]);
    if (r.args[1].is_text()) e.delimiter = r.args[1].text;
    if (!r.args[2].is_text()) return false;
    e.name = r.args[2].text;
    entries->push_back(std::move(e));
    return true;
  };
  std::string cmd = "LIST \"\" \"*\"";
  if (HasCapability("SPECIAL-USE") && HasCapability("LIST-EXTENDED"))
    cmd += " RETURN (SPECIAL-USE)";
  Command(
      cmd,
      [entries, done = std::move(done)](const CommandResult& r) { done(r, std::move(*entries)); },
      std::move(handler));
}

void ImapClient::GetMetadata(const std::string& mailbox, const std::vector<std::string>& entries,
                             bool depth_infinity,
                             std::function<void(const CommandResult&, MetadataMap&&)> done) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw("GETMETADATA ");
  if (depth_infinity) b.Raw("(DEPTH infinity) ");
  b.String(mailbox).Raw(" (");
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) b.Raw(" ");
    b.String(entries[i]);
  }
  b.Raw(")");
  auto values = std::make_shared<MetadataMap>();
  auto handler = [values, mailbox](const ImapResponse& r) {
    if (r.name != "METADATA" || r.args.size() < 2 || !r.args[1].is_list()) return false;
    if (!r.args[0].is_text() || r.args[0].text != mailbox) return false;
    const std::vector<ImapValue>& kv = r.args[1].list;
    for (size_t i = 0; i + 1 < kv.size(); i += 2) {
      if (!kv[i].is_text()) continue;
      if (kv[i + 1].is_nil()) {
        (*values)[kv[i].text] = std::nullopt;
      } else if (kv[i + 1].is_text()) {
        (*values)[kv[i].text] = kv[i + 1].text;
      }
    }
    return true;
  };
  Command(
      b.Finish(),
      [values, done = std::move(done)](const CommandResult& r) { done(r, std::move(*values)); },
      std::move(handler));
}

void ImapClient::SetMetadata(const std::string& mailbox, const MetadataMap& values, Done done) {
  CommandBuilder b(HasCapability("LITERAL+"));
  b.Raw("SETMETADATA ").String(mailbox).Raw(" (");
  bool first = true;
  for (const auto& [entry, value] : values) {
    if (!first) b.Raw(" ");
    first = false;
    b.String(entry).Raw(" ");
    if (value) {
      b.String(*value);
    } else {
      b.Raw("NIL");
    }
  }
  b.Raw(")");
  Command(b.Finish(), std::move(done));
}

void ImapClient::Noop(Done done) {
  Command("NOOP", std::move(done));
}

void ImapClient::Idle(std::function<void(const ImapResponse&)> on_event, Done done) {
  auto cmd = std::make_unique<Cmd>();
  cmd->chunks = {"IDLE\r\n"};
  cmd->log_text = "IDLE";
  cmd->idle = true;
  cmd->done = std::move(done);
  idle_handler_ = std::move(on_event);
  idle_done_requested_ = false;
  Enqueue(std::move(cmd));
}

void ImapClient::IdleDone() {
  if (idling_ == nullptr) {
    // "+" not seen yet: end it as soon as the server confirms.
    idle_done_requested_ = true;
    return;
  }
  idle_done_requested_ = false;
  idling_ = nullptr;
  if (bev_) evbuffer_add(bufferevent_get_output(bev_.get()), "DONE\r\n", 6);
  LogDebug(options_.log_user, "IMAP > DONE");
  ArmTimeout();
}

void ImapClient::Logout(Done done) {
  Command(
      "LOGOUT",
      [this, done = std::move(done)](const CommandResult& r) {
        logging_out_ = true;
        done(r);
      },
      [this](const ImapResponse& r) {
        if (r.name == "BYE") logging_out_ = true;
        return false;
      });
}

}  // namespace mobilesync::agent::imap
