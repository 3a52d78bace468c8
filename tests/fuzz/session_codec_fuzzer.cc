// libFuzzer target: SessionCodec::Decode (src/sync_agent/session_codec.h),
// where the server's frames of a sync session become the engine's frames.
//
// Input: byte 0 is how many of the agent's own actions (0-15) the codec has
// sent before (so that ACK and NACK name real sequence numbers), byte 1
// whether it has committed; the rest is a byte stream of wire frames. They
// take the agent's receive path: FrameDecoder, ValidateFrame, and frames of
// session 1 go to Decode until it fails (the session ends there).
// Properties beyond "no crash, no leak, no UB, no hang":
//   * every engine frame out is one the server may send, and an ACK names
//     only a tag the agent used, each at most once per ACK frame;
//   * list pages are followed by exactly one next-page request or the
//     whole list, never both; the next page starts where the last ended;
//   * bodies handed over are those of the frames received.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sync_agent/session_codec.h"
#include "wire/frame_decoder.h"
#include "wire/message_validator.h"

namespace {

#define FUZZ_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

using namespace mobilesync;
using engine::FrameKind;

constexpr uint64_t kFirstTag = 1000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const unsigned actions = data[0] % 16;
  const bool commit = data[1] & 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  agent::SessionCodec codec(1, "alice@example.org");
  std::vector<wire::Frame> sent;
  engine::Frame f;
  f.kind = FrameKind::kHello;
  FUZZ_CHECK(codec.Encode(f, {}, &sent).ok());
  f.kind = FrameKind::kListRequest;
  FUZZ_CHECK(codec.Encode(f, {}, &sent).ok());
  f.kind = FrameKind::kFetch;
  f.ids = {1, 2, 3};
  FUZZ_CHECK(codec.Encode(f, {}, &sent).ok());
  std::set<uint64_t> tags;
  for (unsigned i = 0; i < actions; ++i) {
    engine::Frame a;
    a.kind = FrameKind::kAction;
    a.tag = kFirstTag + i;
    a.action.kind = i % 2 ? engine::ActionKind::kMarkRead : engine::ActionKind::kInsert;
    a.action.remote = i + 1;
    a.action.meta.match_key = "<m" + std::to_string(i) + "@example.org>";
    FUZZ_CHECK(codec.Encode(a, "Subject: x\r\n\r\nbody\r\n", &sent).ok());
    tags.insert(a.tag);
  }
  FUZZ_CHECK(codec.actions_sent() == actions);
  if (commit) {
    f.kind = FrameKind::kCommit;
    FUZZ_CHECK(codec.Encode(f, {}, &sent).ok());
  }
  for (const wire::Frame& w : sent) FUZZ_CHECK(wire::ValidateFrame(w).ok());

  wire::FrameDecoder decoder;
  for (;;) {
    wire::Frame frame;
    wire::FrameDecoder::Result result;
    if (!decoder.Next(&stream, &frame, &result).ok()) return 0;
    if (result == wire::FrameDecoder::Result::kNeedMore) return 0;
    if (!wire::ValidateFrame(frame).ok()) return 0;  // the connection fails
    if (frame.session_id != 1) continue;             // routed elsewhere
    const wire::FrameType type = frame.type();
    uint32_t page_end = 0;
    bool more_pages = false;
    if (const auto* l = frame.As<wire::pb::List>()) {
      page_end = l->offset() + static_cast<uint32_t>(l->entries_size());
      more_pages = page_end < l->total() && l->entries_size() > 0;
    }
    const std::string body = frame.body;
    agent::SessionCodec::Decoded d;
    Status s = codec.Decode(std::move(frame), &d);
    if (!s.ok()) {
      FUZZ_CHECK(!s.ToString().empty());
      return 0;
    }
    for (const engine::Frame& e : d.frames) {
      switch (e.kind) {
        case FrameKind::kAck: FUZZ_CHECK(tags.count(e.tag) != 0); break;
        case FrameKind::kCommitAck: FUZZ_CHECK(commit); break;
        case FrameKind::kHelloReply:
        case FrameKind::kList:
        case FrameKind::kSyncComplete: break;
        case FrameKind::kFetched:
          FUZZ_CHECK(e.ids.size() == 1 && e.ids[0] != 0);
          FUZZ_CHECK(e.missing == e.messages.empty());
          if (!e.missing) FUZZ_CHECK(codec.HasBody(e.ids[0]));
          break;
        case FrameKind::kAction:
          FUZZ_CHECK(e.action.remote != engine::kNoRemoteId);
          if (!body.empty()) FUZZ_CHECK(codec.TakeBody(e.action.remote) == body);
          break;
        default: FUZZ_CHECK(!"an agent-side frame kind from Decode");
      }
    }
    if (type == wire::FrameType::kList) {
      FUZZ_CHECK(d.replies.size() == (more_pages ? 1u : 0u));
      FUZZ_CHECK(d.frames.size() == (more_pages ? 0u : 1u));
      for (const wire::Frame& r : d.replies) {
        FUZZ_CHECK(wire::ValidateFrame(r).ok());
        const auto* next = r.As<wire::pb::ListRequest>();
        FUZZ_CHECK(next != nullptr && next->offset() == page_end);
      }
    } else {
      FUZZ_CHECK(d.replies.empty());
    }
    // One ACK acknowledges each action at most once; one NACK at most one.
    if (type == wire::FrameType::kAck) FUZZ_CHECK(d.frames.size() <= actions);
    if (type == wire::FrameType::kNack) FUZZ_CHECK(d.frames.size() <= 1);
  }
}
