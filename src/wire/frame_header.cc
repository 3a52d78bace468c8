#include "wire/frame_header.h"

#include <cstdio>

#include "wire/frame_type.h"

namespace mobilesync::wire {

namespace {

void PutFixed32BE(std::string* dst, uint32_t v) {
  const char buf[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  dst->append(buf, 4);
}

uint32_t GetFixed32BE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) |
         uint32_t{u[3]};
}

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%02x", v);
  return buf;
}

}  // namespace

void FrameHeader::EncodeTo(std::string* dst) const {
  PutFixed32BE(dst, meta_length);
  PutFixed32BE(dst, body_length);
  PutFixed32BE(dst, session_id);
  const char tail[4] = {static_cast<char>(type), 0, 0, 0};
  dst->append(tail, 4);
}

Status FrameHeader::DecodeFrom(const char* src) {
  meta_length = GetFixed32BE(src);
  body_length = GetFixed32BE(src + 4);
  session_id = GetFixed32BE(src + 8);
  type = static_cast<uint8_t>(src[12]);
  if (src[13] != 0 || src[14] != 0 || src[15] != 0) {
    return Status::Corruption("frame header", "reserved bytes not zero");
  }
  if (!IsKnownFrameType(type)) {
    return Status::Corruption("frame header", "unknown frame type " + Hex(type));
  }
  const FrameType t = static_cast<FrameType>(type);
  const FrameScope scope = FrameTypeScope(t);
  if (scope == FrameScope::kConnection && session_id != 0) {
    return Status::Corruption(FrameTypeName(t), "connection frame with a session id");
  }
  if (scope == FrameScope::kSession && session_id == 0) {
    return Status::Corruption(FrameTypeName(t), "session frame with session id 0");
  }
  if (body_length != 0 && !FrameTypeAllowsBody(t)) {
    return Status::Corruption(FrameTypeName(t), "frame type carries no body");
  }
  return Status::OK();
}

}  // namespace mobilesync::wire
