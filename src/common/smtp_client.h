// A small asynchronous SMTP client on libevent, for the server's trigger
// e-mails and mail composed on the device and sent directly, and for the
// agent's submission of composed mail (MailSubmitter, submission_host).
//
// Why asynchronous on the event loop and not a blocking client in a worker
// thread: the server is single-threaded by design (the store, the sessions
// and the device API all run in the loop); an SMTP transaction is a handful
// of lines, which a bufferevent and a line-by-line state machine handle in
// little code, with time-outs from bufferevent_set_timeouts and the
// completion callback already on the loop's thread: no locks, no hand-off.
//
// The relay is trusted (the organisation's or the carrier's smarthost on
// loopback or a private network): plain SMTP, no AUTH, no STARTTLS.
#ifndef MOBILESYNC_COMMON_SMTP_CLIENT_H_
#define MOBILESYNC_COMMON_SMTP_CLIENT_H_

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace mobilesync {

struct SmtpEnvelope {
  std::string from;     // MAIL FROM address (no angle brackets)
  std::string to;       // RCPT TO address
  std::string message;  // RFC 5322 text, LF or CRLF line ends
  // Further RCPT TO addresses, after `to` (each must be accepted).
  std::vector<std::string> more_to;
};

class SmtpSender {
 public:
  using Callback = std::function<void(const Status&)>;

  // REQUIRES: base outlives this object.
  SmtpSender(event_base* base, std::string host, uint16_t port, int timeout_seconds = 30);
  ~SmtpSender();  // Abandons transactions in progress (no callbacks).
  SmtpSender(const SmtpSender&) = delete;
  SmtpSender& operator=(const SmtpSender&) = delete;

  // Starts one SMTP transaction. `done` runs exactly once, in the loop,
  // unless the sender is destroyed first.
  void Send(SmtpEnvelope envelope, Callback done);

  size_t in_progress() const { return transactions_.size(); }

 private:
  class Transaction;
  friend class Transaction;
  void Finished(Transaction* t);

  event_base* base_;
  std::string host_;
  uint16_t port_;
  int timeout_seconds_;
  std::set<Transaction*> transactions_;
};

// Normalises line ends to CRLF, dot-stuffs, and appends the final ".".
std::string SmtpDataBlock(const std::string& message);
// An address fit for MAIL FROM/RCPT TO and a To: header: local@domain with
// no spaces, angle brackets, quotes, commas or control characters.
bool IsPlainAddress(const std::string& address);

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_SMTP_CLIENT_H_
