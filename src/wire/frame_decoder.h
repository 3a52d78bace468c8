// Incremental frame decoder: bytes in, whole frames out.
//
// Feed it any split of a byte stream. Each call to Next() either yields one
// frame, or consumes (buffers) all of the input and says how many more bytes
// it needs at least, or fails with a Corruption that names the problem. The
// declared lengths of a frame are checked against the limits BEFORE a single
// byte of it is buffered, so a peer can never make us allocate more than the
// limits, whatever it declares.
//
// Copies: a body is copied exactly once, from the input into Frame::body.
// When the whole frame is in the input, the meta is parsed in place and the
// body assigned from it; when a frame arrives in pieces, the body's buffer is
// reserved once at its declared size and each piece is appended to it, and
// that buffer is moved (not copied) into the frame. tests/unit/wire/
// frame_decoder_alloc_test.cc counts the large allocations to hold us to it.
//
// After an error the decoder stays failed: a byte stream that lost its frame
// boundary cannot be resynchronised, the connection must be closed.
#ifndef MOBILESYNC_WIRE_FRAME_DECODER_H_
#define MOBILESYNC_WIRE_FRAME_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "wire/frame.h"
#include "wire/frame_header.h"
#include "wire/limits.h"

namespace mobilesync::wire {

struct DecoderLimits {
  uint32_t max_meta_bytes = kMaxMetaBytes;
  uint32_t max_body_bytes = kMaxBodyBytes;

  // Until the handshake is done: small metas and no bodies.
  static DecoderLimits Handshake() { return {kMaxHandshakeMetaBytes, 0}; }
};

class FrameDecoder {
 public:
  enum class Result { kFrame, kNeedMore };

  explicit FrameDecoder(DecoderLimits limits = {}) : limits_(limits) {}
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Applies from the next frame header on. REQUIRES: limits no larger than
  // the hard limits in limits.h.
  void set_limits(DecoderLimits limits) { limits_ = limits; }

  // Decodes at most one frame from the front of *input and advances *input
  // past the bytes used. On OK, *result says whether *frame now holds a
  // frame (kFrame) or all of *input was buffered and more is needed
  // (kNeedMore; *input is then empty). On failure (Corruption) *frame is
  // unspecified and every later call fails the same way.
  [[nodiscard]] Status Next(std::string_view* input, Frame* frame, Result* result);

  // After kNeedMore: the least number of bytes that can complete the frame.
  size_t bytes_needed() const;
  // True when no partial frame is buffered: a clean place for EOF.
  bool at_frame_boundary() const { return stage_ == Stage::kHeader && header_fill_ == 0; }
  const Status& error() const { return error_; }

 private:
  enum class Stage { kHeader, kMeta, kBody };

  Status CheckHeader(const char* bytes, FrameHeader* header) const;
  Status Fail(Status s);
  // Copies up to `want - have->size()` bytes from *input into *have.
  static bool Fill(std::string_view* input, size_t want, std::string* have);

  DecoderLimits limits_;
  Status error_;
  Stage stage_ = Stage::kHeader;
  char header_bytes_[kFrameHeaderBytes] = {};
  size_t header_fill_ = 0;
  FrameHeader header_;
  std::string meta_;
  std::string body_;
};

// Parses a frame's meta into *message, choosing the message by type.
// REQUIRES: IsKnownFrameType(type). Fails with Corruption.
[[nodiscard]] Status ParseFrameMeta(uint8_t type, const char* data, size_t size,
                                    FrameMessage* message);

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_FRAME_DECODER_H_
