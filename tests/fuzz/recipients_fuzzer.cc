// libFuzzer target: ExtractRecipients (src/sync_agent/mail_submitter.h),
// which reads the envelope recipients out of a message composed on the
// device (outside input: the server relays what the phone sent).
//
// Properties beyond "no crash, no UB": on success there are 1-100
// recipients, each a plain address (no way to smuggle SMTP syntax into
// RCPT TO), no duplicates; the message handed to the relay has no Bcc
// header left in its header section and is no longer than the input; the
// extraction is idempotent on that message except for the Bcc recipients.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "common/smtp_client.h"
#include "sync_agent/mail_submitter.h"

namespace {

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

// True if the header section (up to the first empty line) has a field
// named Bcc (any case) at the start of a line.
bool HasBcc(const std::string& m) {
  size_t i = 0;
  while (i < m.size()) {
    size_t nl = m.find('\n', i);
    if (nl == std::string::npos) nl = m.size();
    std::string line = m.substr(i, nl - i);
    if (line.empty() || line == "\r") return false;
    if (line.size() >= 4 && tolower(line[0]) == 'b' && tolower(line[1]) == 'c' &&
        tolower(line[2]) == 'c' && line[3] == ':')
      return true;
    i = nl + 1;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string message(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> rcpt;
  std::string without_bcc;
  mobilesync::Status s = mobilesync::agent::ExtractRecipients(message, &rcpt, &without_bcc);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsInvalidArgument());
    return 0;
  }
  FUZZ_CHECK(!rcpt.empty() && rcpt.size() <= 100);
  std::set<std::string> seen;
  for (const std::string& r : rcpt) {
    FUZZ_CHECK(mobilesync::IsPlainAddress(r));
    FUZZ_CHECK(seen.insert(r).second);
  }
  FUZZ_CHECK(without_bcc.size() <= message.size());
  FUZZ_CHECK(!HasBcc(without_bcc));
  // Again on what the relay gets: the same recipients minus Bcc-only ones.
  std::vector<std::string> again;
  std::string twice;
  if (mobilesync::agent::ExtractRecipients(without_bcc, &again, &twice).ok()) {
    FUZZ_CHECK(twice == without_bcc);
    for (const std::string& r : again) FUZZ_CHECK(seen.count(r) != 0);
  }
  return 0;
}
