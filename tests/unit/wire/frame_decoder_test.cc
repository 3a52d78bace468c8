// The incremental decoder: every split of a valid stream decodes to the same
// frames; every malformed input fails with a Corruption that says why, after
// reading no more than it must.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "unit/wire/sample_frames.h"
#include "wire/frame_decoder.h"
#include "wire/frame_encoder.h"
#include "wire/frame_header.h"

namespace mobilesync::wire {
namespace {

using Result = FrameDecoder::Result;

std::string Encode(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) {
    Status s = EncodeFrame(f, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return out;
}

std::string Header(uint32_t meta, uint32_t body, uint32_t session, uint8_t type) {
  FrameHeader h;
  h.meta_length = meta;
  h.body_length = body;
  h.session_id = session;
  h.type = type;
  std::string out;
  h.EncodeTo(&out);
  return out;
}

// Feeds `chunk`, appending every frame it yields to *frames.
Status FeedAll(FrameDecoder* decoder, std::string_view chunk, std::vector<Frame>* frames) {
  for (;;) {
    Frame frame;
    Result result;
    Status s = decoder->Next(&chunk, &frame, &result);
    if (!s.ok()) return s;
    if (result == Result::kNeedMore) {
      EXPECT_TRUE(chunk.empty());
      return s;
    }
    frames->push_back(std::move(frame));
  }
}

void ExpectFrames(const std::vector<Frame>& want, const std::vector<Frame>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].type(), got[i].type()) << i;
    EXPECT_EQ(want[i].session_id, got[i].session_id) << i;
    EXPECT_EQ(want[i].body, got[i].body) << i;
    std::string a, b;
    ASSERT_TRUE(EncodeFrame(want[i], &a).ok());
    ASSERT_TRUE(EncodeFrame(got[i], &b).ok());
    EXPECT_EQ(a, b) << i;
  }
}

// Decodes `bytes` as one chunk and expects a Corruption mentioning `needle`.
void ExpectCorruption(const std::string& bytes, const std::string& needle,
                      DecoderLimits limits = {}) {
  FrameDecoder decoder(limits);
  std::vector<Frame> frames;
  Status s = FeedAll(&decoder, bytes, &frames);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(std::string::npos, s.ToString().find(needle)) << s.ToString();
  // The decoder stays failed: the stream has lost its framing.
  std::vector<Frame> more;
  EXPECT_TRUE(FeedAll(&decoder, Encode({testing::SampleHello()}), &more).IsCorruption());
  EXPECT_TRUE(more.empty());
}

TEST(FrameDecoder, DecodesAStreamFedByteByByte) {
  const std::vector<Frame> want = testing::SampleFrames();
  const std::string bytes = Encode(want);
  FrameDecoder decoder;
  std::vector<Frame> got;
  for (char c : bytes) ASSERT_TRUE(FeedAll(&decoder, std::string_view(&c, 1), &got).ok());
  ExpectFrames(want, got);
  EXPECT_TRUE(decoder.at_frame_boundary());
}

TEST(FrameDecoder, DecodesAStreamSplitAtEveryIndex) {
  const std::vector<Frame> want = testing::SampleFrames();
  const std::string bytes = Encode(want);
  for (size_t split = 0; split <= bytes.size(); ++split) {
    FrameDecoder decoder;
    std::vector<Frame> got;
    ASSERT_TRUE(FeedAll(&decoder, std::string_view(bytes).substr(0, split), &got).ok());
    ASSERT_TRUE(FeedAll(&decoder, std::string_view(bytes).substr(split), &got).ok());
    ExpectFrames(want, got);
    ASSERT_TRUE(decoder.at_frame_boundary()) << split;
  }
}

TEST(FrameDecoder, DecodesAStreamSplitAtEveryPairOfIndices) {
  // Three pieces, for the frames around a body: header/meta/body boundaries
  // all land in different calls.
  const std::vector<Frame> want = {testing::SampleAction(2, 1, pb::ACTION_KIND_INSERT),
                                   testing::SampleAck(2, 1, 1, {1})};
  const std::string bytes = Encode(want);
  for (size_t i = 0; i <= bytes.size(); i += 3) {
    for (size_t j = i; j <= bytes.size(); j += 5) {
      FrameDecoder decoder;
      std::vector<Frame> got;
      std::string_view all(bytes);
      ASSERT_TRUE(FeedAll(&decoder, all.substr(0, i), &got).ok());
      ASSERT_TRUE(FeedAll(&decoder, all.substr(i, j - i), &got).ok());
      ASSERT_TRUE(FeedAll(&decoder, all.substr(j), &got).ok());
      ExpectFrames(want, got);
    }
  }
}

TEST(FrameDecoder, EveryPrefixOfAFrameNeedsMore) {
  // As LevelDB's Coding.Varint32Truncation: no prefix of a valid encoding may
  // decode or fail; each one asks for the rest.
  for (const Frame& f : testing::SampleFrames()) {
    const std::string bytes = Encode({f});
    for (size_t len = 0; len < bytes.size(); ++len) {
      FrameDecoder decoder;
      std::vector<Frame> got;
      ASSERT_TRUE(FeedAll(&decoder, std::string_view(bytes).substr(0, len), &got).ok())
          << FrameTypeName(f.type()) << " prefix " << len;
      EXPECT_TRUE(got.empty());
      EXPECT_EQ(bytes.size() - len, decoder.bytes_needed() +
                                        (len < kFrameHeaderBytes
                                             ? bytes.size() - kFrameHeaderBytes
                                             : 0))
          << FrameTypeName(f.type()) << " prefix " << len;
      EXPECT_EQ(len == 0, decoder.at_frame_boundary());
    }
  }
}

TEST(FrameDecoder, ReportsBytesNeeded) {
  const std::string bytes = Encode({testing::SampleAction(1, 1, pb::ACTION_KIND_INSERT)});
  FrameDecoder decoder;
  std::vector<Frame> got;
  EXPECT_EQ(kFrameHeaderBytes, decoder.bytes_needed());
  ASSERT_TRUE(FeedAll(&decoder, std::string_view(bytes).substr(0, 10), &got).ok());
  EXPECT_EQ(kFrameHeaderBytes - 10, decoder.bytes_needed());
  ASSERT_TRUE(FeedAll(&decoder, std::string_view(bytes).substr(10, 10), &got).ok());
  EXPECT_EQ(bytes.size() - 20, decoder.bytes_needed());
  ASSERT_TRUE(FeedAll(&decoder, std::string_view(bytes).substr(20), &got).ok());
  EXPECT_EQ(1u, got.size());
}

TEST(FrameDecoder, LeavesTheNextFrameInTheInput) {
  const std::string bytes = Encode({testing::SampleHello(), testing::SampleWelcome()});
  FrameDecoder decoder;
  std::string_view in(bytes);
  Frame frame;
  Result result;
  ASSERT_TRUE(decoder.Next(&in, &frame, &result).ok());
  ASSERT_EQ(Result::kFrame, result);
  EXPECT_EQ(FrameType::kHello, frame.type());
  EXPECT_EQ(Encode({testing::SampleWelcome()}), std::string(in));
}

TEST(FrameDecoder, RejectsOversizedLength) {
  // Only the header is given: the limit must be checked before anything is
  // buffered or allocated for the rest.
  ExpectCorruption(Header(kMaxMetaBytes + 1, 0, 1, 0x16), "meta length");
  ExpectCorruption(Header(0xffffffff, 0, 1, 0x16), "meta length");
  ExpectCorruption(Header(10, kMaxBodyBytes + 1, 1, 0x16), "body length");
  ExpectCorruption(Header(10, 0xffffffff, 1, 0x15), "body length");
}

TEST(FrameDecoder, RejectsOversizedLengthAfterTheHeaderArrivesInPieces) {
  const std::string h = Header(0xffffffff, 0, 1, 0x16);
  FrameDecoder decoder;
  std::vector<Frame> got;
  for (size_t i = 0; i + 1 < h.size(); ++i) {
    ASSERT_TRUE(FeedAll(&decoder, std::string_view(h).substr(i, 1), &got).ok());
  }
  EXPECT_TRUE(FeedAll(&decoder, std::string_view(h).substr(h.size() - 1), &got).IsCorruption());
}

TEST(FrameDecoder, EnforcesHandshakeLimits) {
  const DecoderLimits hs = DecoderLimits::Handshake();
  ExpectCorruption(Header(kMaxHandshakeMetaBytes + 1, 0, 0, 0x01), "meta length", hs);
  ExpectCorruption(Header(10, 1, 1, 0x16), "body length", hs);
  // The handshake itself fits.
  FrameDecoder decoder(hs);
  std::vector<Frame> got;
  ASSERT_TRUE(FeedAll(&decoder, Encode({testing::SampleHello()}), &got).ok());
  EXPECT_EQ(1u, got.size());
  // Lifting the limits applies to the next frame.
  decoder.set_limits(DecoderLimits());
  ASSERT_TRUE(
      FeedAll(&decoder, Encode({testing::SampleAction(1, 1, pb::ACTION_KIND_INSERT)}), &got)
          .ok());
  EXPECT_EQ(2u, got.size());
}

TEST(FrameDecoder, RejectsUnknownType) {
  ExpectCorruption(Header(0, 0, 0, 0x00), "unknown frame type 0x00");
  ExpectCorruption(Header(0, 0, 0, 0x07), "unknown frame type 0x07");
  ExpectCorruption(Header(0, 0, 1, 0x1c), "unknown frame type 0x1c");
  ExpectCorruption(Header(0, 0, 1, 0xff), "unknown frame type 0xff");
}

TEST(FrameDecoder, RejectsNonZeroReservedBytes) {
  std::string h = Header(0, 0, 0, 0x03);
  h[15] = 1;
  ExpectCorruption(h, "reserved");
}

TEST(FrameDecoder, RejectsSessionScopeViolations) {
  ExpectCorruption(Header(0, 0, 5, 0x03), "connection frame with a session id");
  ExpectCorruption(Header(0, 0, 0, 0x16), "session frame with session id 0");
  // ERROR is allowed on both.
  FrameDecoder decoder;
  std::vector<Frame> got;
  ASSERT_TRUE(FeedAll(&decoder, Header(0, 0, 0, 0x05) + Header(0, 0, 9, 0x05), &got).ok());
  EXPECT_EQ(2u, got.size());
}

TEST(FrameDecoder, RejectsBodyOnFrameWithoutBody) {
  ExpectCorruption(Header(0, 1, 1, 0x17), "carries no body");
  ExpectCorruption(Header(0, 1, 0, 0x01), "carries no body");
}

TEST(FrameDecoder, RejectsMalformedMeta) {
  // 0x0a = field 1, length-delimited, then a length past the end.
  ExpectCorruption(Header(2, 0, 1, 0x16) + std::string("\x0a\x7f", 2), "malformed protobuf");
  // A field number 0 tag is never valid.
  ExpectCorruption(Header(2, 0, 0, 0x01) + std::string("\x00\x01", 2), "malformed protobuf");
  // An unterminated varint.
  ExpectCorruption(Header(3, 0, 0, 0x03) + std::string("\x08\xff\xff", 3), "malformed protobuf");
  // Wrong wire type for a known field (string field 1 of BeginSession as
  // a 64-bit fixed) is an unknown field to protobuf, which it keeps; but
  // a group end tag out of place is malformed.
  ExpectCorruption(Header(1, 0, 1, 0x10) + std::string("\x0c", 1), "malformed protobuf");
}

TEST(FrameDecoder, LeavesUtf8ChecksToTheValidator) {
  // BeginSession.user = "\xff": text fields are `bytes` on the wire, so the
  // decoder passes it on and ValidateFrame rejects it (no protobuf log line).
  FrameDecoder decoder;
  std::vector<Frame> got;
  ASSERT_TRUE(
      FeedAll(&decoder, Header(3, 0, 1, 0x10) + std::string("\x0a\x01\xff", 3), &got).ok());
  ASSERT_EQ(1u, got.size());
  EXPECT_EQ("\xff", got[0].As<pb::BeginSession>()->user());
}

TEST(FrameDecoder, KeepsUnknownFieldsForForwardCompatibility) {
  // A newer peer's field 100 (varint) on PING is ignored, not an error.
  const std::string meta("\x08\x05\xa0\x06\x01", 5);  // nonce=5, field 100 = 1
  FrameDecoder decoder;
  std::vector<Frame> got;
  ASSERT_TRUE(FeedAll(&decoder, Header(5, 0, 0, 0x03) + meta, &got).ok());
  ASSERT_EQ(1u, got.size());
  EXPECT_EQ(5u, got[0].As<pb::Ping>()->nonce());
}

TEST(FrameDecoder, ErrorsAfterValidFramesKeepTheGoodOnes) {
  std::string bytes = Encode({testing::SampleHello(), testing::SampleWelcome()});
  bytes += Header(0, 0, 0, 0x42);
  FrameDecoder decoder;
  std::vector<Frame> got;
  Status s = FeedAll(&decoder, bytes, &got);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(2u, got.size());
  EXPECT_EQ(s.ToString(), decoder.error().ToString());
}

TEST(FrameDecoder, SurvivesRandomGarbageAndMutations) {
  // Cheap in-test fuzzing; tests/fuzz/ does the real thing.
  std::mt19937 rng(12345);
  const std::string valid = Encode(testing::SampleFrames());
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = valid;
    const int mutations = 1 + static_cast<int>(rng() % 8);
    for (int m = 0; m < mutations; ++m) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (round % 3 == 0) bytes.resize(rng() % bytes.size());
    FrameDecoder decoder;
    std::vector<Frame> got;
    std::string_view in(bytes);
    Status s;
    while (!in.empty() && s.ok()) {
      const size_t n = std::min<size_t>(in.size(), 1 + rng() % 64);
      s = FeedAll(&decoder, in.substr(0, n), &got);
      in.remove_prefix(n);
    }
    EXPECT_TRUE(s.ok() || s.IsCorruption()) << s.ToString();
    EXPECT_LE(got.size(), testing::SampleFrames().size());
  }
}

}  // namespace
}  // namespace mobilesync::wire
