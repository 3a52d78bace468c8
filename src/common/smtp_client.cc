#include "common/smtp_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <cstdlib>
#include <utility>

namespace mobilesync {

// One SMTP transaction: connect, then one command per expected reply:
//   220 greeting -> EHLO -> 250 -> MAIL FROM -> 250 -> RCPT TO -> 250
//   (-> RCPT TO -> 250 for each of more_to)
//   -> DATA -> 354 -> message + "." -> 250 -> QUIT (not waited for).
class SmtpSender::Transaction {
 public:
  Transaction(SmtpSender* owner, SmtpEnvelope env, Callback done)
      : owner_(owner), env_(std::move(env)), done_(std::move(done)) {}
  ~Transaction() {
    if (bev_) bufferevent_free(bev_);
  }

  void Start() {
    bev_ = bufferevent_socket_new(owner_->base_, -1,
                                  BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev_) return Fail(Status::IOError("smtp: cannot create a socket"));
    bufferevent_setcb(bev_, &Transaction::OnRead, nullptr, &Transaction::OnEvent, this);
    timeval tv{owner_->timeout_seconds_, 0};
    bufferevent_set_timeouts(bev_, &tv, &tv);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect_hostname(bev_, nullptr, AF_UNSPEC, owner_->host_.c_str(),
                                            owner_->port_) != 0) {
      Fail(Status::Unavailable("smtp: cannot connect to " + Relay()));
    }
  }

 private:
  enum class Step { kGreeting, kEhlo, kMailFrom, kRcptTo, kData, kBody, kDone };

  std::string Relay() const { return owner_->host_ + ":" + std::to_string(owner_->port_); }

  static void OnRead(bufferevent* bev, void* arg) {
    auto* self = static_cast<Transaction*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    // Replies are lines "NNN-text" (continued) or "NNN text" (last).
    for (;;) {
      size_t len = 0;
      char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
      if (!line) break;
      std::string reply(line, len);
      free(line);
      if (reply.size() < 3) return self->Fail(Status::Corruption("smtp: short reply from", self->Relay()));
      if (reply.size() > 3 && reply[3] == '-') continue;
      if (!self->OnReply(atoi(reply.substr(0, 3).c_str()), reply)) return;
    }
    if (evbuffer_get_length(in) > 4096) {
      self->Fail(Status::Corruption("smtp: reply line too long from", self->Relay()));
    }
  }

  static void OnEvent(bufferevent* /*bev*/, short what, void* arg) {
    auto* self = static_cast<Transaction*>(arg);
    if (what & BEV_EVENT_CONNECTED) return;
    if (what & BEV_EVENT_TIMEOUT) {
      return self->Fail(Status::Timeout("smtp: no answer from", self->Relay()));
    }
    self->Fail(Status::Unavailable("smtp: connection to " + self->Relay() + " failed or closed"));
  }

  void SendLine(const std::string& line) {
    bufferevent_write(bev_, line.data(), line.size());
    bufferevent_write(bev_, "\r\n", 2);
  }

  // Returns false when the transaction ended (this object is gone).
  bool OnReply(int code, const std::string& reply) {
    auto expect = [&](int want) {
      if (code == want) return true;
      Fail(Status::Unavailable("smtp: relay " + Relay() + " refused",
                               reply.substr(0, 200)));
      return false;
    };
    switch (step_) {
      case Step::kGreeting:
        if (!expect(220)) return false;
        SendLine("EHLO mobilesync-server");
        step_ = Step::kEhlo;
        return true;
      case Step::kEhlo:
        if (!expect(250)) return false;
        SendLine("MAIL FROM:<" + env_.from + ">");
        step_ = Step::kMailFrom;
        return true;
      case Step::kMailFrom:
        if (!expect(250)) return false;
        SendLine("RCPT TO:<" + env_.to + ">");
        step_ = Step::kRcptTo;
        return true;
      case Step::kRcptTo:
        if (code != 250 && code != 251) return expect(250);
        if (next_rcpt_ < env_.more_to.size()) {
          SendLine("RCPT TO:<" + env_.more_to[next_rcpt_++] + ">");
          return true;
        }
        SendLine("DATA");
        step_ = Step::kData;
        return true;
      case Step::kData: {
        if (!expect(354)) return false;
        std::string data = SmtpDataBlock(env_.message);
        bufferevent_write(bev_, data.data(), data.size());
        step_ = Step::kBody;
        return true;
      }
      case Step::kBody:
        if (!expect(250)) return false;
        // Accepted: the message is the relay's now. QUIT is a courtesy;
        // we do not wait for its answer.
        SendLine("QUIT");
        step_ = Step::kDone;
        Finish(Status::OK());
        return false;
      case Step::kDone:
        return false;
    }
    return false;
  }

  void Fail(Status s) { Finish(std::move(s)); }

  void Finish(Status s) {
    Callback done = std::move(done_);
    SmtpSender* owner = owner_;
    owner->Finished(this);  // deletes this
    if (done) done(s);
  }

  SmtpSender* owner_;
  SmtpEnvelope env_;
  Callback done_;
  bufferevent* bev_ = nullptr;
  Step step_ = Step::kGreeting;
  size_t next_rcpt_ = 0;  // index into env_.more_to
};

SmtpSender::SmtpSender(event_base* base, std::string host, uint16_t port, int timeout_seconds)
    : base_(base), host_(std::move(host)), port_(port), timeout_seconds_(timeout_seconds) {}

SmtpSender::~SmtpSender() {
  for (Transaction* t : transactions_) delete t;
}

void SmtpSender::Send(SmtpEnvelope envelope, Callback done) {
  auto* t = new Transaction(this, std::move(envelope), std::move(done));
  transactions_.insert(t);
  t->Start();
}

void SmtpSender::Finished(Transaction* t) {
  // bufferevent_free from inside its own (deferred) callback is safe:
  // libevent finishes the callback before releasing the memory.
  transactions_.erase(t);
  delete t;
}

std::string SmtpDataBlock(const std::string& message) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  bool line_start = true;
  for (size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (line_start && c == '.') out.push_back('.');
    if (c == '\r') {
      if (i + 1 < message.size() && message[i + 1] == '\n') continue;  // CRLF: emit at \n
      out += "\r\n";
      line_start = true;
      continue;
    }
    if (c == '\n') {
      out += "\r\n";
      line_start = true;
      continue;
    }
    out.push_back(c);
    line_start = false;
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

}  // namespace mobilesync
