// libFuzzer target: the whole receive path of the wire layer.
//
// Input: byte 0 picks a split pattern, bytes 1-8 (little-endian) are a
// direction mask for the frames either side may send, the rest is a byte
// stream of frames: both directions of a conversation, so that the
// connection and session checkers can reach every phase. Properties checked beyond "no crash, no
// leak, no UB, no huge allocation":
//   1. Splitting does not matter: the stream fed in pieces gives exactly
//      the frames (and the error, if any) that it gives fed whole.
//   2. A decoded frame re-encodes, and the re-encoding decodes to itself.
//   3. Validator and connection/session checkers return a Status on
//      anything and keep their bounds (open sessions, window).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "wire/connection_state.h"
#include "wire/frame_decoder.h"
#include "wire/frame_encoder.h"
#include "wire/message_validator.h"
#include "wire/session_state.h"

namespace {

using mobilesync::Status;
using namespace mobilesync::wire;

#define FUZZ_CHECK(cond)                                                    \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

struct Outcome {
  std::vector<std::string> frames;  // each frame re-encoded
  std::string error;                // "" if the stream ended cleanly
};

std::string Reencode(const Frame& frame) {
  std::string out;
  Status s = EncodeFrame(frame, &out);
  // Whatever the decoder accepts, the encoder must be able to send: the
  // limits and header rules are shared.
  FUZZ_CHECK(s.ok());
  return out;
}

Outcome Decode(std::string_view stream, uint8_t pattern) {
  FrameDecoder decoder;
  Outcome out;
  size_t chunk = 0;
  switch (pattern % 4) {
    case 0: chunk = stream.size() + 1; break;  // whole
    case 1: chunk = 1; break;                  // byte by byte
    case 2: chunk = 7; break;
    case 3: chunk = 1 + pattern / 4; break;
  }
  while (true) {
    std::string_view piece = stream.substr(0, chunk);
    stream.remove_prefix(piece.size());
    for (;;) {
      Frame frame;
      FrameDecoder::Result result;
      Status s = decoder.Next(&piece, &frame, &result);
      if (!s.ok()) {
        FUZZ_CHECK(s.IsCorruption());
        out.error = s.ToString();
        return out;
      }
      if (result == FrameDecoder::Result::kNeedMore) {
        FUZZ_CHECK(piece.empty());
        FUZZ_CHECK(decoder.bytes_needed() > 0);
        break;
      }
      out.frames.push_back(Reencode(frame));
    }
    if (stream.empty()) return out;
  }
}

// Who sends a frame type; for types either side sends, bit (i % 64) of the
// input's direction mask picks the direction of the i-th frame.
Direction SenderOf(const Frame& frame, uint64_t mask, size_t index) {
  switch (frame.type()) {
    case FrameType::kHello:
    case FrameType::kBeginSession:
    case FrameType::kListRequest:
    case FrameType::kFetch:
    case FrameType::kSwap:
      return Direction::kAgentToServer;
    case FrameType::kWelcome:
    case FrameType::kSyncRequest:
    case FrameType::kBeginSessionReply:
    case FrameType::kList:
    case FrameType::kMessageBody:
    case FrameType::kSyncComplete:
      return Direction::kServerToAgent;
    default:
      return (mask >> (index % 64)) & 1 ? Direction::kServerToAgent : Direction::kAgentToServer;
  }
}

void CheckSemantics(std::string_view stream, uint64_t mask) {
  FrameDecoder decoder;
  ConnectionState connection;
  for (size_t index = 0;; ++index) {
    Frame frame;
    FrameDecoder::Result result;
    if (!decoder.Next(&stream, &frame, &result).ok()) return;
    if (result == FrameDecoder::Result::kNeedMore) return;
    // Property 2: the re-encoding decodes to the same bytes.
    const std::string once = Reencode(frame);
    FrameDecoder again;
    std::string_view in(once);
    Frame copy;
    FUZZ_CHECK(again.Next(&in, &copy, &result).ok());
    FUZZ_CHECK(result == FrameDecoder::Result::kFrame && in.empty());
    FUZZ_CHECK(Reencode(copy) == once);

    if (!ValidateFrame(frame).ok()) continue;
    SessionState::Verdict verdict;
    Status s = connection.Observe(SenderOf(frame, mask, index), frame, &verdict);
    FUZZ_CHECK(s.ok() || s.IsInvalidArgument());
    FUZZ_CHECK(connection.open_sessions() <= kMaxOpenSessions);
    if (const SessionState* session = connection.session(frame.session_id)) {
      FUZZ_CHECK(session->in_flight(Direction::kAgentToServer) <= connection.window());
      FUZZ_CHECK(session->in_flight(Direction::kServerToAgent) <= connection.window());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  const uint8_t pattern = data[0];
  uint64_t mask = 0;
  for (int i = 8; i >= 1; --i) mask = (mask << 8) | data[i];
  const std::string_view stream(reinterpret_cast<const char*>(data + 9), size - 9);

  // Property 1: the split pattern changes nothing.
  const Outcome whole = Decode(stream, 0);
  const Outcome split = Decode(stream, pattern);
  FUZZ_CHECK(whole.frames == split.frames);
  FUZZ_CHECK(whole.error == split.error);

  CheckSemantics(stream, mask);
  return 0;
}
