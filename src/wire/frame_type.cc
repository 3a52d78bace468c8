#include "wire/frame_type.h"

namespace mobilesync::wire {

bool IsKnownFrameType(uint8_t value) {
  switch (value) {
#define MS_WIRE_CASE(name, value, msg, scope, body) case value:
    MS_WIRE_FRAME_TYPES(MS_WIRE_CASE)
#undef MS_WIRE_CASE
    return true;
    default:
      return false;
  }
}

std::string_view FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kWelcome: return "WELCOME";
    case FrameType::kPing: return "PING";
    case FrameType::kPong: return "PONG";
    case FrameType::kError: return "ERROR";
    case FrameType::kSyncRequest: return "SYNC_REQUEST";
    case FrameType::kBeginSession: return "BEGIN_SESSION";
    case FrameType::kBeginSessionReply: return "BEGIN_SESSION_REPLY";
    case FrameType::kListRequest: return "LIST_REQUEST";
    case FrameType::kList: return "LIST";
    case FrameType::kFetch: return "FETCH";
    case FrameType::kMessageBody: return "MESSAGE_BODY";
    case FrameType::kAction: return "ACTION";
    case FrameType::kAck: return "ACK";
    case FrameType::kNack: return "NACK";
    case FrameType::kSwap: return "SWAP";
    case FrameType::kSyncComplete: return "SYNC_COMPLETE";
    case FrameType::kEndSession: return "END_SESSION";
  }
  return "UNKNOWN";
}

FrameScope FrameTypeScope(FrameType type) {
  switch (type) {
#define MS_WIRE_CASE(name, value, msg, scope, body) \
  case FrameType::name:                             \
    return FrameScope::scope;
    MS_WIRE_FRAME_TYPES(MS_WIRE_CASE)
#undef MS_WIRE_CASE
  }
  return FrameScope::kSession;
}

bool FrameTypeAllowsBody(FrameType type) {
  switch (type) {
#define MS_WIRE_CASE(name, value, msg, scope, body) \
  case FrameType::name:                             \
    return body;
    MS_WIRE_FRAME_TYPES(MS_WIRE_CASE)
#undef MS_WIRE_CASE
  }
  return false;
}

}  // namespace mobilesync::wire
