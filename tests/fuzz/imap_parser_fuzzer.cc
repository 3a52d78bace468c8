// libFuzzer target: the agent's IMAP response parser must never crash, leak
// or read out of bounds, whatever the server sends and however it is split.
// The first input byte chooses the chunk size, so the fuzzer explores the
// resumable framing as well as the tokeniser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sync_agent/imap/imap_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mobilesync::agent::imap::ImapParser;
  using mobilesync::agent::imap::ImapParserLimits;
  using mobilesync::agent::imap::ImapResponse;
  if (size == 0) return 0;
  size_t chunk = static_cast<size_t>(data[0] % 17) + 1;
  ImapParserLimits limits;
  // Small limits so that the limit paths are reached with small inputs.
  limits.max_line_bytes = 4096;
  limits.max_literal_bytes = 8192;
  limits.max_response_bytes = 16384;
  limits.max_depth = 16;
  ImapParser parser(limits);
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  while (!in.empty()) {
    size_t n = in.size() < chunk ? in.size() : chunk;
    parser.Feed(in.substr(0, n));
    in.remove_prefix(n);
    while (true) {
      ImapResponse r;
      ImapParser::Result res;
      if (!parser.Next(&r, &res).ok()) return 0;
      if (res == ImapParser::Result::kNeedMore) break;
      (void)r.CodeName();
      (void)r.IsStatus();
    }
  }
  return 0;
}
