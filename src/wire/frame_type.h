// Frame types: the byte at offset 12 of every frame header.
//
// The table below is the single list of frame types; the enum, the names, the
// variant in frame.h and the decoder's dispatch are all generated from it, so
// adding a type is one line here plus the message in sync.proto.
#ifndef MOBILESYNC_WIRE_FRAME_TYPE_H_
#define MOBILESYNC_WIRE_FRAME_TYPE_H_

#include <cstdint>
#include <string_view>

namespace mobilesync::wire {

// Where a frame type may appear: on session 0 only, on a session only, or
// both (ERROR: session 0 is fatal for the connection, else for the session).
enum class FrameScope : uint8_t { kConnection, kSession, kEither };

// X(enumerator, wire value, sync.proto message, scope, carries a body)
#define MS_WIRE_FRAME_TYPES(X)                                          \
  X(kHello, 0x01, Hello, kConnection, false)                            \
  X(kWelcome, 0x02, Welcome, kConnection, false)                        \
  X(kPing, 0x03, Ping, kConnection, false)                              \
  X(kPong, 0x04, Pong, kConnection, false)                              \
  X(kError, 0x05, Error, kEither, false)                                \
  X(kSyncRequest, 0x06, SyncRequest, kConnection, false)                \
  X(kBeginSession, 0x10, BeginSession, kSession, false)                 \
  X(kBeginSessionReply, 0x11, BeginSessionReply, kSession, false)       \
  X(kListRequest, 0x12, ListRequest, kSession, false)                   \
  X(kList, 0x13, List, kSession, false)                                 \
  X(kFetch, 0x14, Fetch, kSession, false)                               \
  X(kMessageBody, 0x15, MessageBody, kSession, true)                    \
  X(kAction, 0x16, Action, kSession, true)                              \
  X(kAck, 0x17, Ack, kSession, false)                                   \
  X(kNack, 0x18, Nack, kSession, false)                                 \
  X(kSwap, 0x19, SwapRequest, kSession, false)                            \
  X(kSyncComplete, 0x1A, SyncComplete, kSession, false)                 \
  X(kEndSession, 0x1B, EndSession, kSession, false)

enum class FrameType : uint8_t {
#define MS_WIRE_ENUM(name, value, msg, scope, body) name = value,
  MS_WIRE_FRAME_TYPES(MS_WIRE_ENUM)
#undef MS_WIRE_ENUM
};

// True if `value` is a frame type of this protocol version.
bool IsKnownFrameType(uint8_t value);
// "HELLO", "ACTION"...; "UNKNOWN(0x42)" style text is the caller's business.
// REQUIRES: IsKnownFrameType(type).
std::string_view FrameTypeName(FrameType type);
FrameScope FrameTypeScope(FrameType type);
// True for the types that may carry a body trailer (MESSAGE_BODY, ACTION).
bool FrameTypeAllowsBody(FrameType type);

}  // namespace mobilesync::wire

#endif  // MOBILESYNC_WIRE_FRAME_TYPE_H_
