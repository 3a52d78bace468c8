// Frame: one decoded unit of the sync protocol.
//
// A frame is a session id, one sync.proto message (its type is the frame
// type) and, for MESSAGE_BODY and ACTION, the raw RFC 5322 message bytes.
// The body is kept outside the protobuf message on purpose: the decoder
// writes it straight from the input into `body`, so a message is copied once
// on the way in, and an agent can hand `body` to Dovecot without re-encoding.
#ifndef MOBILESYNC_WIRE_FRAME_H_
#define MOBILESYNC_WIRE_FRAME_H_

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include "wire/frame_type.h"
#include "wire/sync.pb.h"

namespace mobilesync::wire {

// One alternative per frame type, in the order of MS_WIRE_FRAME_TYPES.
using FrameMessage = std::variant<
#define MS_WIRE_ALT(name, value, msg, scope, body) pb::msg,
    MS_WIRE_FRAME_TYPES(MS_WIRE_ALT)
#undef MS_WIRE_ALT
    std::monostate>;  // never used; absorbs the trailing comma

// FrameTypeOf<pb::Action>() == FrameType::kAction.
template <typename T>
constexpr FrameType FrameTypeOf();
#define MS_WIRE_TRAIT(name, value, msg, scope, body)  \
  template <>                                         \
  constexpr FrameType FrameTypeOf<pb::msg>() {        \
    return FrameType::name;                           \
  }
MS_WIRE_FRAME_TYPES(MS_WIRE_TRAIT)
#undef MS_WIRE_TRAIT

struct Frame {
  uint32_t session_id = 0;
  FrameMessage message;
  std::string body;

  // The type of `message`. REQUIRES: message does not hold std::monostate.
  FrameType type() const;

  // The message as T, or nullptr if the frame holds another type.
  template <typename T>
  const T* As() const {
    return std::get_if<T>(&message);
  }
  template <typename T>
  T* As() {
    return std::get_if<T>(&message);
  }
};

template <typename T>
Frame MakeFrame(uint32_t session_id, T message, std::string body = {}) {
  Frame frame;
  frame.session_id = session_id;
  frame.message = std::move(message);
  frame.body = std::move(body);
  return frame;
}

// "ACTION session=3 meta=42 body=4096" for logs: never message contents.
std::string DescribeFrame(const Frame& frame);

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_FRAME_H_
