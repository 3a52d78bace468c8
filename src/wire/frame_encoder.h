// Encoding frames for the wire.
//
// The encoder is for our own frames: a frame that breaks a hard limit or the
// header rules is a bug in the caller and gets InvalidArgument, never a
// partial write. Semantic checks (message_validator.h) are the caller's.
#ifndef MOBILESYNC_WIRE_FRAME_ENCODER_H_
#define MOBILESYNC_WIRE_FRAME_ENCODER_H_

#include <string>

#include "common/status.h"
#include "wire/frame.h"

namespace mobilesync::wire {

// Appends header, meta and body of `frame` to *out. The body is copied once,
// straight into *out. On failure *out is unchanged.
[[nodiscard]] Status EncodeFrame(const Frame& frame, std::string* out);

// Appends header and meta only; the header announces frame.body.size() body
// bytes that the caller sends next by itself (e.g. evbuffer_add_reference on
// the body, so a large message is not copied at all by the encoder).
// On failure *out is unchanged.
[[nodiscard]] Status EncodeFrameHead(const Frame& frame, std::string* out);

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_FRAME_ENCODER_H_
