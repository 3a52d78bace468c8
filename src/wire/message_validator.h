// Semantic checks of one decoded frame (docs/protocol.md, sections 5 and 8).
//
// The decoder guarantees structure (lengths, type, session scope, protobuf);
// this layer checks what protobuf cannot: required fields are present (in
// proto3, a zero or empty value means absent), strings and lists are within
// the limits, enums are values this version knows, and fields that must go
// together do. It knows nothing of order: that is session_state.h.
#ifndef MOBILESYNC_WIRE_MESSAGE_VALIDATOR_H_
#define MOBILESYNC_WIRE_MESSAGE_VALIDATOR_H_

#include <string_view>

#include "common/status.h"
#include "wire/frame.h"

namespace mobilesync::wire {

// Returns OK or InvalidArgument("<TYPE>", "<field>: <what is wrong>").
[[nodiscard]] Status ValidateFrame(const Frame& frame);

// Strict UTF-8: no overlong forms, surrogates or code points over U+10FFFF.
bool IsValidUtf8(std::string_view text);
// The rules for names that identify things, exposed for other layers.
// A user: 1..kMaxUserBytes of UTF-8, no ASCII control characters, no spaces.
bool IsValidUserName(std::string_view user);
// A remote id: 1..kMaxRemoteIdBytes of printable ASCII without space.
bool IsValidRemoteId(std::string_view id);

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_MESSAGE_VALIDATOR_H_
