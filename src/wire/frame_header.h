// The fixed 16-byte frame header (docs/protocol.md, section 2):
//
//   offset  size  field
//        0     4  meta_length   u32 big-endian: bytes of the protobuf part
//        4     4  body_length   u32 big-endian: bytes of the raw body trailer
//        8     4  session_id    u32 big-endian: 0 = connection level
//       12     1  type          FrameType
//       13     3  reserved      must be zero
//       16        meta_length bytes of protobuf, then body_length bytes
//
// The layout never changes between protocol versions, so that a peer can
// always read the ERROR(VERSION_UNSUPPORTED) of a newer or older peer.
#ifndef MOBILESYNC_WIRE_FRAME_HEADER_H_
#define MOBILESYNC_WIRE_FRAME_HEADER_H_

#include <cstdint>
#include <string>

#include "common/status.h"
#include "wire/limits.h"

namespace mobilesync::wire {

struct FrameHeader {
  uint32_t meta_length = 0;
  uint32_t body_length = 0;
  uint32_t session_id = 0;
  uint8_t type = 0;

  // Appends exactly kFrameHeaderBytes to *dst.
  void EncodeTo(std::string* dst) const;
  // Reads kFrameHeaderBytes from src, checking only what the header alone
  // can tell: reserved bytes, known type, session scope, body allowed.
  // REQUIRES: src points at kFrameHeaderBytes readable bytes.
  [[nodiscard]] Status DecodeFrom(const char* src);
};

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_FRAME_HEADER_H_
