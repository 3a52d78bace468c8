#include "wire/frame_encoder.h"

#include <variant>

#include "wire/frame_header.h"
#include "wire/limits.h"

namespace mobilesync::wire {

namespace {

const google::protobuf::MessageLite* MetaOf(const Frame& frame) {
  return std::visit(
      [](const auto& m) -> const google::protobuf::MessageLite* {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, std::monostate>) {
          return nullptr;
        } else {
          return &m;
        }
      },
      frame.message);
}

}  // namespace

Status EncodeFrameHead(const Frame& frame, std::string* out) {
  const google::protobuf::MessageLite* meta = MetaOf(frame);
  if (meta == nullptr) return Status::InvalidArgument("encode frame", "no message");
  // ByteSizeLong also caches the sizes that serialisation uses below.
  const size_t meta_size = meta->ByteSizeLong();
  if (meta_size > kMaxMetaBytes) {
    return Status::InvalidArgument("encode frame", "meta over kMaxMetaBytes");
  }
  if (frame.body.size() > kMaxBodyBytes) {
    return Status::InvalidArgument("encode frame", "body over kMaxBodyBytes");
  }
  FrameHeader header;
  header.meta_length = static_cast<uint32_t>(meta_size);
  header.body_length = static_cast<uint32_t>(frame.body.size());
  header.session_id = frame.session_id;
  header.type = static_cast<uint8_t>(frame.type());

  const size_t old_size = out->size();
  header.EncodeTo(out);
  // Check with the decoder's own rules, so that we never send what a peer
  // running this code would reject.
  Status s = header.DecodeFrom(out->data() + old_size);
  if (!s.ok()) {
    out->resize(old_size);
    return Status::InvalidArgument("encode frame", s.message());
  }
  out->resize(old_size + kFrameHeaderBytes + meta_size);
  auto* dst = reinterpret_cast<uint8_t*>(out->data() + old_size + kFrameHeaderBytes);
  meta->SerializeWithCachedSizesToArray(dst);
  return Status::OK();
}

Status EncodeFrame(const Frame& frame, std::string* out) {
  // One allocation for the whole frame, so the body is copied exactly once.
  const google::protobuf::MessageLite* meta = MetaOf(frame);
  if (meta != nullptr && frame.body.size() <= kMaxBodyBytes) {
    out->reserve(out->size() + kFrameHeaderBytes + meta->ByteSizeLong() + frame.body.size());
  }
  Status s = EncodeFrameHead(frame, out);
  if (s.ok()) out->append(frame.body);
  return s;
}

}  // namespace mobilesync::wire
