// Throughput of the wire codec: frames/s and MB/s to encode and decode an
// ACTION INSERT carrying a 4 KiB or 1 MiB message, plus a small ACK.
// Build without sanitizers (see bench/RESULTS.md for the command).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "unit/wire/sample_frames.h"
#include "wire/frame_decoder.h"
#include "wire/frame_encoder.h"
#include "wire/message_validator.h"

namespace mobilesync::wire {
namespace {

Frame InsertFrame(size_t body_size) {
  Frame f = testing::SampleAction(1, 1, pb::ACTION_KIND_INSERT);
  f.body = testing::SampleBody(body_size);
  return f;
}

void Encode(benchmark::State& state, const Frame& frame) {
  size_t frame_size = 0;
  for (auto _ : state) {
    // A fresh buffer per frame, as when each frame becomes its own evbuffer
    // chunk: the allocation is part of what we measure.
    std::string buf;
    if (!EncodeFrame(frame, &buf).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(buf.data());
    frame_size = buf.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame_size));
}

// Decodes and validates `bytes` fed in `chunk`-byte pieces; frames decoded.
int DecodeAll(FrameDecoder* decoder, std::string_view bytes, size_t chunk, Frame* frame) {
  int frames = 0;
  for (size_t pos = 0; pos < bytes.size(); pos += chunk) {
    std::string_view in = bytes.substr(pos, chunk);
    FrameDecoder::Result result;
    for (;;) {
      if (!decoder->Next(&in, frame, &result).ok()) return -1;
      if (result == FrameDecoder::Result::kNeedMore) break;
      if (!ValidateFrame(*frame).ok()) return -1;
      ++frames;
    }
  }
  return frames;
}

// `chunk` 0: the whole frame in one piece (the decoder's fast path).
void Decode(benchmark::State& state, const std::string& bytes, size_t chunk) {
  FrameDecoder decoder;
  Frame frame;
  if (chunk == 0) chunk = bytes.size();
  for (auto _ : state) {
    if (DecodeAll(&decoder, bytes, chunk, &frame) != 1) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(frame.body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes.size()));
}

std::string Encoded(const Frame& frame) {
  std::string out;
  if (!EncodeFrame(frame, &out).ok()) std::abort();
  return out;
}

void BM_EncodeInsert(benchmark::State& state) {
  Encode(state, InsertFrame(static_cast<size_t>(state.range(0))));
}
BENCHMARK(BM_EncodeInsert)->Arg(4096)->Arg(1 << 20);

void BM_DecodeInsertWhole(benchmark::State& state) {
  Decode(state, Encoded(InsertFrame(static_cast<size_t>(state.range(0)))), 0);
}
BENCHMARK(BM_DecodeInsertWhole)->Arg(4096)->Arg(1 << 20);

// 16 KiB pieces: a typical TLS record / socket read, the slow path.
void BM_DecodeInsertSplit16K(benchmark::State& state) {
  Decode(state, Encoded(InsertFrame(static_cast<size_t>(state.range(0)))), 16384);
}
BENCHMARK(BM_DecodeInsertSplit16K)->Arg(4096)->Arg(1 << 20);

void BM_EncodeAck(benchmark::State& state) { Encode(state, testing::SampleAck(1, 1, 8, {3})); }
BENCHMARK(BM_EncodeAck);

void BM_DecodeAck(benchmark::State& state) {
  Decode(state, Encoded(testing::SampleAck(1, 1, 8, {3})), 0);
}
BENCHMARK(BM_DecodeAck);

}  // namespace
}  // namespace mobilesync::wire

BENCHMARK_MAIN();
