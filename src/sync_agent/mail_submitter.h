// MailSubmitter: sends a message composed on the device through the
// organisation's MTA, the way Dovecot itself submits mail (its
// `submission_host` and `sendmail_path` settings): SMTP to a relay when
// submission_host is set, else the sendmail program.
//
// The envelope sender is the user's address; the recipients are those of
// the message's To, Cc and Bcc headers; a Bcc header is never passed on.
// A failure (the MTA refused, time-out, sendmail exited non-zero) is a
// Status naming the cause; the caller keeps the message queued.
#ifndef MOBILESYNC_SYNC_AGENT_MAIL_SUBMITTER_H_
#define MOBILESYNC_SYNC_AGENT_MAIL_SUBMITTER_H_

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace mobilesync::agent {

struct MailSubmitterOptions {
  // host:port of an SMTP relay; when empty, sendmail_path is used.
  std::string submission_host;
  std::string sendmail_path = "/usr/sbin/sendmail";
  uint64_t timeout_ms = 60000;
};

class MailSubmitter {
 public:
  using Done = std::function<void(const Status&)>;

  // REQUIRES: base outlives this object.
  MailSubmitter(event_base* base, MailSubmitterOptions options);
  ~MailSubmitter();  // abandons submissions in progress (no callbacks)
  MailSubmitter(const MailSubmitter&) = delete;
  MailSubmitter& operator=(const MailSubmitter&) = delete;

  // Submits `message` (RFC 5322) with envelope sender `from`. `done` runs
  // exactly once, from the loop, unless the submitter is destroyed first.
  void Submit(const std::string& from, const std::string& message, Done done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The envelope recipients of `message`: the addresses of its To, Cc and Bcc
// headers (in <...> or bare, groups flattened, duplicates dropped), and the
// message without its Bcc header (what an SMTP relay gets). More than 100
// recipients, none, a malformed address or a header section over 256 KB is
// InvalidArgument. Exposed for tests.
[[nodiscard]] Status ExtractRecipients(const std::string& message,
                                       std::vector<std::string>* recipients,
                                       std::string* without_bcc);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_MAIL_SUBMITTER_H_
