// Small blocking IMAP and LMTP clients for tests (plain TCP on loopback).
// They are test tools, not product code: simple, strict about what they read,
// with a receive time-out so a silent server fails a test instead of hanging.
#ifndef MOBILESYNC_TESTS_HARNESS_MAIL_CLIENTS_H_
#define MOBILESYNC_TESTS_HARNESS_MAIL_CLIENTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace mobilesync::testing {

// A connected TCP socket with line reading and a receive time-out.
class LineSocket {
 public:
  LineSocket() = default;
  ~LineSocket();
  LineSocket(const LineSocket&) = delete;
  LineSocket& operator=(const LineSocket&) = delete;

  [[nodiscard]] Status Connect(const std::string& host, uint16_t port, int timeout_ms = 20000);
  [[nodiscard]] Status Send(const std::string& data);
  // Reads one line without its CRLF.
  [[nodiscard]] Status ReadLine(std::string* line);
  // Reads exactly n bytes.
  [[nodiscard]] Status ReadBytes(size_t n, std::string* out);
  void Close();
  bool connected() const { return fd_ >= 0; }

 private:
  [[nodiscard]] Status Fill();
  int fd_ = -1;
  std::string buf_;
};

struct ImapResponse {
  std::string status;               // "OK", "NO" or "BAD" of the tagged line
  std::string tagged;               // the tagged line after the tag
  std::vector<std::string> untagged;  // "* ..." lines, literals inlined
  bool ok() const { return status == "OK"; }
  // All untagged lines joined with "\n".
  std::string Text() const;
};

class ImapTestClient {
 public:
  // Connects and reads the greeting.
  [[nodiscard]] Status Connect(const std::string& host, uint16_t port);
  // LOGIN; returns PermissionDenied on NO.
  [[nodiscard]] Status Login(const std::string& user, const std::string& password);
  // Sends `command` with a fresh tag and reads until its tagged response.
  [[nodiscard]] Status Command(const std::string& command, ImapResponse* response);
  // APPEND with a LITERAL+ literal. `flags` like "(\\Seen)" or "".
  [[nodiscard]] Status Append(const std::string& mailbox, const std::string& flags,
                              const std::string& message, ImapResponse* response);
  void Logout();
  const std::string& greeting() const { return greeting_; }

 private:
  [[nodiscard]] Status ReadResponse(const std::string& tag, ImapResponse* response);
  LineSocket sock_;
  std::string greeting_;
  int next_tag_ = 1;
};

// Delivers `message` (RFC 5322 text, LF or CRLF line ends) to `recipient`
// over LMTP at host:port. Returns OK only if the server accepted it (250).
[[nodiscard]] Status DeliverLmtp(const std::string& host, uint16_t port,
                                 const std::string& recipient, const std::string& message,
                                 const std::string& sender = "sender@example.test");

// A simple RFC 5322 message for tests.
std::string MakeTestMessage(const std::string& subject, const std::string& body,
                            const std::string& to = "user@example.test",
                            const std::string& message_id = "");

// Quotes a string for IMAP ("..." with \ and " escaped).
std::string ImapQuote(const std::string& s);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_MAIL_CLIENTS_H_
