// Writes the seed corpus of frame_decoder_fuzzer into the directory given as
// argv[1]. Not part of the build; regenerate after a protocol change with
//   scripts/fuzz.sh --build frame_decoder   # generates fuzz-build/gen
//   clang++ -std=gnu++17 -Isrc -Itests -Ifuzz-build/gen \
//     tests/fuzz/frame_decoder_seeds.cc src/common/status.cc src/wire/frame*.cc \
//     fuzz-build/gen/wire/sync.pb.cc $(pkg-config --cflags --libs protobuf) -o /tmp/seeds
//   rm tests/fuzz/corpus/frame_decoder/* && /tmp/seeds tests/fuzz/corpus/frame_decoder
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "unit/wire/sample_frames.h"
#include "wire/frame_encoder.h"
#include "wire/session_state.h"

namespace {

using namespace mobilesync::wire;
constexpr Direction kA = Direction::kAgentToServer;
constexpr Direction kS = Direction::kServerToAgent;

// Input layout: [split pattern][direction mask, 8 bytes LE][frames].
void Write(const std::string& path, char pattern,
           const std::vector<std::pair<Direction, Frame>>& frames) {
  uint64_t mask = 0;
  std::string stream;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (frames[i].first == kS) mask |= uint64_t{1} << (i % 64);
    if (!EncodeFrame(frames[i].second, &stream).ok()) std::abort();
  }
  std::string out(1, pattern);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(mask >> (8 * i)));
  std::ofstream(path, std::ios::binary) << out << stream;
}

Frame Begin(uint32_t s, uint64_t generation) {
  pb::BeginSession b;
  b.set_user("alice@example.org");
  b.set_agent_generation(generation);
  return MakeFrame(s, b);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  std::vector<Frame> all = testing::SampleFrames();
  for (Frame& f : all) {
    if (f.body.size() > 600) f.body.resize(600);
  }
  for (const Frame& f : all) {
    std::string name(FrameTypeName(f.type()));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Write(dir + "/" + name, '\x01', {{kA, f}});
  }
  std::vector<std::pair<Direction, Frame>> every;
  for (const Frame& f : all) every.push_back({kA, f});
  Write(dir + "/all_types_bytewise", '\x01', every);

  // The update sync of docs/protocol.md 6.5, both directions.
  const uint32_t s = 7;
  pb::SwapRequest swap;
  swap.set_last_seq(2);
  pb::SyncComplete complete;
  complete.set_last_seq(2);
  complete.set_free_slots(1);
  Write(dir + "/update_sync", '\x07',
        {{kA, testing::SampleHello()},
         {kS, testing::SampleWelcome()},
         {kA, Begin(s, 77)},
         {kS, testing::SampleBeginSessionReply(s, pb::SYNC_KIND_UPDATE)},
         {kA, testing::SampleAction(s, 1, pb::ACTION_KIND_DESTROY)},
         {kA, testing::SampleAction(s, 2, pb::ACTION_KIND_MARK_READ)},
         {kS, testing::SampleAck(s, 1, 2)},
         {kA, MakeFrame(s, swap)},
         {kS, testing::SampleAction(s, 1, pb::ACTION_KIND_INSERT, false)},
         {kS, testing::SampleAction(s, 2, pb::ACTION_KIND_DESTROY, false)},
         {kA, testing::SampleAck(s, 1, 1)},
         {kA, testing::SampleAck(s, 2, 2)},
         {kS, MakeFrame(s, complete)},
         {kA, testing::SampleAction(s, 3, pb::ACTION_KIND_INSERT)},
         {kS, testing::SampleAck(s, 3, 3, {3})},
         {kA, testing::SampleEndSession(s, true)},
         {kS, testing::SampleEndSession(s, false)}});

  // An initial sync: list, fetch, normalise, pull.
  pb::ListRequest list_request;
  list_request.set_limit(100);
  pb::Fetch fetch;
  fetch.set_request_id(1);
  fetch.set_remote_id("100");
  Frame list = all[9];
  list.session_id = 3;
  Frame body = all[11];
  body.session_id = 3;
  Write(dir + "/initial_sync", '\x02',
        {{kA, testing::SampleHello()},
         {kS, testing::SampleWelcome()},
         {kA, Begin(3, 0)},
         {kS, testing::SampleBeginSessionReply(3, pb::SYNC_KIND_INITIAL)},
         {kA, MakeFrame(3, list_request)},
         {kS, list},
         {kA, MakeFrame(3, fetch)},
         {kS, body},
         {kA, testing::SampleAction(3, 1, pb::ACTION_KIND_UNMAP)},
         {kA, testing::SampleAction(3, 2, pb::ACTION_KIND_INSERT)},
         {kS, testing::SampleAck(3, 1, 2, {2})},
         {kA, testing::SampleEndSession(3, true)},
         {kS, testing::SampleEndSession(3, false)}});
  return 0;
}
