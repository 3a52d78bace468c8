#include "wire/frame_decoder.h"

#include <algorithm>
#include <cstring>

namespace mobilesync::wire {

Status ParseFrameMeta(uint8_t type, const char* data, size_t size, FrameMessage* message) {
  bool ok = false;
  switch (static_cast<FrameType>(type)) {
#define MS_WIRE_CASE(name, value, msg, scope, body)                      \
  case FrameType::name:                                                   \
    ok = message->emplace<pb::msg>().ParseFromArray(data, static_cast<int>(size)); \
    break;
    MS_WIRE_FRAME_TYPES(MS_WIRE_CASE)
#undef MS_WIRE_CASE
  }
  if (!ok) {
    return Status::Corruption(FrameTypeName(static_cast<FrameType>(type)),
                              "malformed protobuf meta");
  }
  return Status::OK();
}

Status FrameDecoder::CheckHeader(const char* bytes, FrameHeader* header) const {
  Status s = header->DecodeFrom(bytes);
  if (!s.ok()) return s;
  if (header->meta_length > limits_.max_meta_bytes) {
    return Status::Corruption("frame header", "meta length " +
                                                  std::to_string(header->meta_length) +
                                                  " over limit " +
                                                  std::to_string(limits_.max_meta_bytes));
  }
  if (header->body_length > limits_.max_body_bytes) {
    return Status::Corruption("frame header", "body length " +
                                                  std::to_string(header->body_length) +
                                                  " over limit " +
                                                  std::to_string(limits_.max_body_bytes));
  }
  return Status::OK();
}

Status FrameDecoder::Fail(Status s) {
  error_ = s;
  return s;
}

bool FrameDecoder::Fill(std::string_view* input, size_t want, std::string* have) {
  const size_t n = std::min(want - have->size(), input->size());
  have->append(input->data(), n);
  input->remove_prefix(n);
  return have->size() == want;
}

Status FrameDecoder::Next(std::string_view* input, Frame* frame, Result* result) {
  if (!error_.ok()) return error_;
  *result = Result::kNeedMore;

  // Fast path: nothing buffered and the whole frame is in the input. Parse the
  // meta in place and copy the body once; no intermediate buffer.
  if (stage_ == Stage::kHeader && header_fill_ == 0 && input->size() >= kFrameHeaderBytes) {
    FrameHeader header;
    Status s = CheckHeader(input->data(), &header);
    if (!s.ok()) return Fail(s);
    const uint64_t total =
        uint64_t{kFrameHeaderBytes} + header.meta_length + header.body_length;
    if (input->size() >= total) {
      const char* meta = input->data() + kFrameHeaderBytes;
      s = ParseFrameMeta(header.type, meta, header.meta_length, &frame->message);
      if (!s.ok()) return Fail(s);
      frame->session_id = header.session_id;
      frame->body.assign(meta + header.meta_length, header.body_length);
      input->remove_prefix(total);
      *result = Result::kFrame;
      return Status::OK();
    }
    // Partial frame: keep the checked header and buffer the rest below.
    header_ = header;
    input->remove_prefix(kFrameHeaderBytes);
    header_fill_ = kFrameHeaderBytes;
    stage_ = Stage::kMeta;
    // Both reservations are bounded by the limits checked above. Reserving
    // the whole body now is what keeps it to one copy.
    meta_.reserve(header_.meta_length);
    body_.reserve(header_.body_length);
  }

  for (;;) {
    switch (stage_) {
      case Stage::kHeader: {
        const size_t n = std::min(kFrameHeaderBytes - header_fill_, input->size());
        std::memcpy(header_bytes_ + header_fill_, input->data(), n);
        input->remove_prefix(n);
        header_fill_ += n;
        if (header_fill_ < kFrameHeaderBytes) return Status::OK();
        Status s = CheckHeader(header_bytes_, &header_);
        if (!s.ok()) return Fail(s);
        meta_.reserve(header_.meta_length);
        body_.reserve(header_.body_length);
        stage_ = Stage::kMeta;
        break;
      }
      case Stage::kMeta:
        if (!Fill(input, header_.meta_length, &meta_)) return Status::OK();
        stage_ = Stage::kBody;
        break;
      case Stage::kBody: {
        if (!Fill(input, header_.body_length, &body_)) return Status::OK();
        Status s = ParseFrameMeta(header_.type, meta_.data(), meta_.size(), &frame->message);
        if (!s.ok()) return Fail(s);
        frame->session_id = header_.session_id;
        frame->body = std::move(body_);
        body_ = std::string();
        // A large LIST may have grown meta_: do not keep megabytes per idle
        // connection.
        if (meta_.capacity() > 64 * 1024) {
          meta_ = std::string();
        } else {
          meta_.clear();
        }
        header_fill_ = 0;
        stage_ = Stage::kHeader;
        *result = Result::kFrame;
        return Status::OK();
      }
    }
  }
}

size_t FrameDecoder::bytes_needed() const {
  switch (stage_) {
    case Stage::kHeader:
      return kFrameHeaderBytes - header_fill_;
    case Stage::kMeta:
      return header_.meta_length - meta_.size() + header_.body_length;
    case Stage::kBody:
      return header_.body_length - body_.size();
  }
  return 0;
}

}  // namespace mobilesync::wire
