// libFuzzer target: the agent's control-socket protocol
// (docs/control-protocol.md), what any local peer allowed on the socket
// sends and what the agent answers.
//
// Input: a byte stream cut into lines at '\n' (a '\r' before it dropped, as
// ControlServer::ProcessLines does). Each line goes through
// ParseControlLine; properties checked beyond "no crash, no UB":
//   1. The verb is lower-case and no word holds a blank; --json/--wait are
//      never left among the args; every arg is a substring of the line.
//   2. A reply built from the line (as an error message and as a body)
//      frames correctly: an -ERR reply is one line; a +OK reply ends at the
//      first "." line, and undoing the dot-stuffing gives the body back.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sync_agent/control_server.h"

namespace {

using mobilesync::Status;
using namespace mobilesync::agent;

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

bool HasBlank(const std::string& w) {
  return w.find(' ') != std::string::npos || w.find('\t') != std::string::npos;
}

void CheckRequest(const std::string& line) {
  ControlRequest req;
  if (!ParseControlLine(line, &req)) {
    FUZZ_CHECK(SplitWords(line).empty());
    return;
  }
  FUZZ_CHECK(!req.verb.empty() && !HasBlank(req.verb));
  for (char c : req.verb) FUZZ_CHECK(!isupper(static_cast<unsigned char>(c)));
  for (const std::string& a : req.args) {
    FUZZ_CHECK(!a.empty() && !HasBlank(a));
    FUZZ_CHECK(a != "--json" && a != "--wait");
    FUZZ_CHECK(line.find(a) != std::string::npos);
  }
  // The options count anywhere after the verb (the first word).
  const std::vector<std::string> words = SplitWords(line);
  bool json = false, wait = false;
  for (size_t k = 1; k < words.size(); ++k) {
    json = json || words[k] == "--json";
    wait = wait || words[k] == "--wait";
  }
  FUZZ_CHECK(req.json == json && req.wait == wait);
  FUZZ_CHECK(req.args.size() + (json ? 1 : 0) + (wait ? 1 : 0) <= words.size() - 1);
  FUZZ_CHECK(!req.interactive && req.peer_uid == 0);
}

void CheckReply(const std::string& text) {
  // An error is exactly one line.
  std::string err = FormatControlReply(ControlReply::Error(Status::InvalidArgument(text)));
  FUZZ_CHECK(err.rfind("-ERR ", 0) == 0 && !err.empty() && err.back() == '\n');
  FUZZ_CHECK(err.find('\n') == err.size() - 1);
  FUZZ_CHECK(err.find('\r') == std::string::npos);

  // A body reads back (one trailing newline is not kept: bodies are lines).
  std::string out = FormatControlReply(ControlReply::Ok(text));
  FUZZ_CHECK(out.rfind("+OK\n", 0) == 0);
  size_t i = 4;
  std::vector<std::string> lines;
  bool ended = false;
  while (i < out.size()) {
    size_t nl = out.find('\n', i);
    FUZZ_CHECK(nl != std::string::npos);  // every line is terminated
    std::string l = out.substr(i, nl - i);
    i = nl + 1;
    if (l == ".") {
      ended = true;
      break;
    }
    if (!l.empty() && l[0] == '.') l.erase(0, 1);
    lines.push_back(l);
  }
  FUZZ_CHECK(ended && i == out.size());
  std::string body;
  for (size_t k = 0; k < lines.size(); ++k) body += (k ? "\n" : "") + lines[k];
  std::string want = text;
  if (!want.empty() && want.back() == '\n') want.pop_back();
  FUZZ_CHECK(body == want);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  size_t i = 0;
  while (i <= in.size()) {
    size_t nl = in.find('\n', i);
    if (nl == std::string::npos) nl = in.size();
    std::string line = in.substr(i, nl - i);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() <= ControlServer::kMaxLineBytes) CheckRequest(line);
    i = nl + 1;
  }
  CheckReply(in);
  return 0;
}
