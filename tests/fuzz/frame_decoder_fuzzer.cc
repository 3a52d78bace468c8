// libFuzzer target: the whole receive path of the wire layer.
//
// Input: byte 0 picks a split pattern and which side we play; the rest is
// the byte stream from the peer. Properties checked beyond "no crash, no
// leak, no UB, no huge allocation":
//   1. Splitting does not matter: the stream fed in pieces gives exactly
//      the frames (and the error, if any) that it gives fed whole.
//   2. A decoded frame re-encodes, and the re-encoding decodes to itself.
//   3. Validator and session checker return a Status on anything.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

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

void CheckSemantics(std::string_view stream, bool we_are_server) {
  FrameDecoder decoder;
  std::map<uint32_t, SessionState> sessions;
  const Direction from_peer =
      we_are_server ? Direction::kAgentToServer : Direction::kServerToAgent;
  for (;;) {
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
    if (FrameTypeScope(frame.type()) == FrameScope::kConnection) continue;
    if (sessions.size() >= 64 && sessions.count(frame.session_id) == 0) continue;
    SessionState& state = sessions.try_emplace(frame.session_id, 4).first->second;
    SessionState::Verdict verdict;
    Status s = state.Observe(from_peer, frame, &verdict);
    FUZZ_CHECK(s.ok() || s.IsInvalidArgument());
    FUZZ_CHECK(state.in_flight(Direction::kAgentToServer) <= kMaxWindow);
    FUZZ_CHECK(state.in_flight(Direction::kServerToAgent) <= kMaxWindow);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t pattern = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  // Property 1: the split pattern changes nothing.
  const Outcome whole = Decode(stream, 0);
  const Outcome split = Decode(stream, pattern);
  FUZZ_CHECK(whole.frames == split.frames);
  FUZZ_CHECK(whole.error == split.error);

  CheckSemantics(stream, (pattern & 0x80) != 0);
  return 0;
}
