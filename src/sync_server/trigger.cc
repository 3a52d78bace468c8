#include "sync_server/trigger.h"

#include <ctime>

#include "sync_server/crypto_util.h"

namespace mobilesync::server {

std::string TriggerHeaderValue(const std::string& secret, const std::string& user, int64_t ts,
                               const std::string& nonce) {
  const std::string ts_text = std::to_string(ts);
  // The MAC input: "v1\n<user>\n<ts>\n<nonce>", no trailing newline.
  const std::string mac = HmacSha256Hex(secret, "v1\n" + user + "\n" + ts_text + "\n" + nonce);
  return "v1; user=" + user + "; ts=" + ts_text + "; nonce=" + nonce + "; mac=" + mac;
}

std::string RfcDate(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

Status BuildTriggerMessage(const std::string& secret, const std::string& user,
                           const std::string& from, const std::string& address, int64_t now,
                           std::string* message) {
  if (secret.size() < kMinTriggerSecretBytes) {
    return Status::InvalidArgument("trigger secret shorter than 32 bytes");
  }
  std::string nonce;
  Status s = RandomHex(16, &nonce);
  if (!s.ok()) return s;
  *message = "From: " + from + "\r\n" +
             "To: " + address + "\r\n" +
             "Subject: mobilesync sync request\r\n" +
             "Date: " + RfcDate(now) + "\r\n" +
             "Message-ID: <trigger." + nonce + "@mobilesync>\r\n" +
             "Auto-Submitted: auto-generated\r\n" +
             std::string(kTriggerHeader) + ": " + TriggerHeaderValue(secret, user, now, nonce) +
             "\r\n" +
             "MIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=us-ascii\r\n"
             "\r\n"
             "This message asks the mobilesync agent to synchronise your mailbox.\r\n"
             "It is removed when delivered and is never shown in your inbox.\r\n";
  return Status::OK();
}

}  // namespace mobilesync::server
