// Encoder and decoder together: every frame type survives the round trip,
// and the encoder refuses what the decoder would reject.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "unit/wire/sample_frames.h"
#include "wire/frame_decoder.h"
#include "wire/frame_encoder.h"
#include "wire/frame_header.h"

namespace mobilesync::wire {
namespace {

using testing::SampleBody;
using testing::SampleFrames;

std::string MetaBytes(const Frame& f) {
  return std::visit(
      [](const auto& m) -> std::string {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, std::monostate>) {
          return "";
        } else {
          return m.SerializeAsString();
        }
      },
      f.message);
}

void ExpectSameFrame(const Frame& want, const Frame& got) {
  EXPECT_EQ(want.type(), got.type());
  EXPECT_EQ(want.session_id, got.session_id);
  EXPECT_EQ(MetaBytes(want), MetaBytes(got)) << FrameTypeName(want.type());
  EXPECT_EQ(want.body, got.body);
}

Frame DecodeOne(const std::string& bytes) {
  FrameDecoder decoder;
  std::string_view in(bytes);
  Frame frame;
  FrameDecoder::Result result;
  Status s = decoder.Next(&in, &frame, &result);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(FrameDecoder::Result::kFrame, result);
  EXPECT_TRUE(in.empty());
  return frame;
}

TEST(FrameCodec, RoundTripsEveryFrameType) {
  std::set<FrameType> types;
  for (const Frame& f : SampleFrames()) {
    std::string bytes;
    ASSERT_TRUE(EncodeFrame(f, &bytes).ok()) << FrameTypeName(f.type());
    ExpectSameFrame(f, DecodeOne(bytes));
    types.insert(f.type());
  }
  size_t all_types = 0;
#define MS_COUNT(name, value, msg, scope, body) ++all_types;
  MS_WIRE_FRAME_TYPES(MS_COUNT)
#undef MS_COUNT
  EXPECT_EQ(all_types, types.size()) << "SampleFrames() misses a frame type";
}

TEST(FrameCodec, RoundTripsEveryActionKind) {
  for (int k = pb::ActionKind_MIN + 1; k <= pb::ActionKind_MAX; ++k) {
    const bool from_agent = k != pb::ACTION_KIND_DELIVER;
    Frame f = testing::SampleAction(3, 9, static_cast<pb::ActionKind>(k), from_agent);
    std::string bytes;
    ASSERT_TRUE(EncodeFrame(f, &bytes).ok());
    ExpectSameFrame(f, DecodeOne(bytes));
  }
}

TEST(FrameCodec, RoundTripsEmptyMetaAndLargeBody) {
  Frame ping = MakeFrame(0, pb::Ping());
  std::string bytes;
  ASSERT_TRUE(EncodeFrame(ping, &bytes).ok());
  EXPECT_EQ(kFrameHeaderBytes, bytes.size());  // all-default proto3 is 0 bytes
  ExpectSameFrame(ping, DecodeOne(bytes));

  pb::MessageBody m;
  m.set_request_id(4);
  m.set_remote_id("big");
  m.set_result(pb::FETCH_RESULT_OK);
  Frame big = MakeFrame(9, m, SampleBody(3 << 20));
  bytes.clear();
  ASSERT_TRUE(EncodeFrame(big, &bytes).ok());
  ExpectSameFrame(big, DecodeOne(bytes));
}

TEST(FrameEncoder, WritesTheDocumentedHeaderLayout) {
  pb::Ping m;
  m.set_nonce(1);  // field 1 varint: 0x08 0x01
  Frame f = MakeFrame(0, m);
  std::string bytes;
  ASSERT_TRUE(EncodeFrame(f, &bytes).ok());
  const std::string want("\x00\x00\x00\x02"   // meta_length
                         "\x00\x00\x00\x00"   // body_length
                         "\x00\x00\x00\x00"   // session_id
                         "\x03\x00\x00\x00"   // type PING, reserved
                         "\x08\x01",          // meta
                         18);
  EXPECT_EQ(want, bytes);

  Frame action = testing::SampleAction(0x01020304, 1, pb::ACTION_KIND_MARK_READ);
  bytes.clear();
  ASSERT_TRUE(EncodeFrame(action, &bytes).ok());
  EXPECT_EQ(std::string("\x01\x02\x03\x04\x16", 5), bytes.substr(8, 5));
}

TEST(FrameEncoder, HeadPlusBodyEqualsWholeFrame) {
  Frame f = testing::SampleAction(5, 1, pb::ACTION_KIND_INSERT);
  std::string whole, head;
  ASSERT_TRUE(EncodeFrame(f, &whole).ok());
  ASSERT_TRUE(EncodeFrameHead(f, &head).ok());
  EXPECT_EQ(whole, head + f.body);
}

TEST(FrameEncoder, AppendsToExistingOutput) {
  std::string out = "prefix";
  ASSERT_TRUE(EncodeFrame(testing::SampleHello(), &out).ok());
  EXPECT_EQ("prefix", out.substr(0, 6));
  ExpectSameFrame(testing::SampleHello(), DecodeOne(out.substr(6)));
}

TEST(FrameEncoder, RejectsWhatTheDecoderWouldRejectAndLeavesOutputAlone) {
  struct Case {
    const char* name;
    Frame frame;
  } cases[] = {
      {"body on HELLO", MakeFrame(0, pb::Hello(), "x")},
      {"session on PING", MakeFrame(3, pb::Ping())},
      {"no session on ACTION", MakeFrame(0, pb::Action())},
      {"no message", Frame{0, std::monostate(), ""}},
  };
  for (const Case& c : cases) {
    std::string out = "keep";
    Status s = EncodeFrame(c.frame, &out);
    EXPECT_TRUE(s.IsInvalidArgument()) << c.name << ": " << s.ToString();
    EXPECT_EQ("keep", out) << c.name;
  }
}

TEST(FrameEncoder, RejectsBodyOverTheHardLimit) {
  Frame f = testing::SampleAction(1, 1, pb::ACTION_KIND_INSERT);
  f.body.assign(size_t{kMaxBodyBytes} + 1, 'x');
  std::string out;
  Status s = EncodeFrame(f, &out);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_TRUE(out.empty());
}

TEST(FrameHeader, EncodesAndDecodesEveryField) {
  FrameHeader h;
  h.meta_length = 0x01020304;
  h.body_length = 0x0a0b0c0d;
  h.session_id = 0xfffffffe;
  h.type = static_cast<uint8_t>(FrameType::kMessageBody);
  std::string bytes;
  h.EncodeTo(&bytes);
  ASSERT_EQ(kFrameHeaderBytes, bytes.size());
  FrameHeader got;
  ASSERT_TRUE(got.DecodeFrom(bytes.data()).ok());
  EXPECT_EQ(h.meta_length, got.meta_length);
  EXPECT_EQ(h.body_length, got.body_length);
  EXPECT_EQ(h.session_id, got.session_id);
  EXPECT_EQ(h.type, got.type);
}

TEST(FrameType, NamesAndScopesAreConsistent) {
  for (int v = 0; v < 256; ++v) {
    if (!IsKnownFrameType(static_cast<uint8_t>(v))) continue;
    const FrameType t = static_cast<FrameType>(v);
    EXPECT_NE("UNKNOWN", FrameTypeName(t));
    EXPECT_EQ(t == FrameType::kMessageBody || t == FrameType::kAction, FrameTypeAllowsBody(t));
  }
  EXPECT_FALSE(IsKnownFrameType(0));
  EXPECT_FALSE(IsKnownFrameType(0xff));
  EXPECT_EQ("ACTION session=5 meta=0 body=0", DescribeFrame(MakeFrame(5, pb::Action())));
}

}  // namespace
}  // namespace mobilesync::wire
