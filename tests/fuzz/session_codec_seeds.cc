// Writes the seed corpus of session_codec_fuzzer into the directory given
// as argv[1]. Not part of the build; regenerate after a protocol change with
//   scripts/fuzz.sh --build session_codec   # generates fuzz-build/gen
//   clang++ -std=gnu++17 -Isrc -Ifuzz-build/gen tests/fuzz/session_codec_seeds.cc \
//     src/common/status.cc src/wire/frame*.cc fuzz-build/gen/wire/sync.pb.cc \
//     $(pkg-config --cflags --libs protobuf) -o /tmp/seeds
//   rm tests/fuzz/corpus/session_codec/* && /tmp/seeds tests/fuzz/corpus/session_codec
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "wire/frame_encoder.h"

namespace {

using namespace mobilesync::wire;

// Input layout: [actions the agent sent][committed?][frames of session 1].
void Write(const std::string& path, char actions, char commit, const std::vector<Frame>& frames) {
  std::string out{actions, commit};
  for (const Frame& f : frames)
    if (!EncodeFrame(f, &out).ok()) std::abort();
  std::ofstream(path, std::ios::binary) << out;
}

Frame Reply(pb::SyncKind kind) {
  pb::BeginSessionReply m;
  m.set_server_generation(7);
  m.set_kind(kind);
  m.set_window_size(6);
  m.set_message_count(2);
  return MakeFrame(1, m);
}

Frame List(uint32_t offset, uint32_t total, std::vector<int> ids) {
  pb::List m;
  m.set_offset(offset);
  m.set_total(total);
  for (int id : ids) {
    pb::ListEntry* e = m.add_entries();
    e->set_remote_id(std::to_string(id));
    e->set_date(1700000000 + id);
    e->set_size(100);
    e->set_state(id % 2 ? pb::MESSAGE_STATE_READ : pb::MESSAGE_STATE_UNREAD);
    if (id % 3)
      e->set_message_id("<m" + std::to_string(id) + "@example.org>");
    else
      e->set_message_guid("guid" + std::to_string(id));
  }
  return MakeFrame(1, m);
}

Frame Body(int id, pb::FetchResult result) {
  pb::MessageBody m;
  m.set_request_id(static_cast<uint32_t>(id));
  m.set_remote_id(std::to_string(id));
  m.set_result(result);
  m.set_date(1700000000);
  m.set_state(pb::MESSAGE_STATE_UNREAD);
  return MakeFrame(1, m, result == pb::FETCH_RESULT_OK ? "Subject: s\r\n\r\nb\r\n" : "");
}

Frame Action(uint64_t seq, pb::ActionKind kind, int id) {
  pb::Action m;
  m.set_seq(seq);
  m.set_kind(kind);
  m.set_remote_id(std::to_string(id));
  std::string body;
  if (kind == pb::ACTION_KIND_DELIVER || kind == pb::ACTION_KIND_INSERT) {
    m.set_date(1700000000);
    m.set_state(pb::MESSAGE_STATE_UNREAD);
    m.set_message_id("<new@example.org>");
    body = "From: x@example.org\r\n\r\nhello\r\n";
  }
  return MakeFrame(1, m, body);
}

Frame Ack(uint64_t first, uint64_t last, std::vector<std::pair<uint64_t, int>> assigned) {
  pb::Ack m;
  m.set_first_seq(first);
  m.set_last_seq(last);
  for (auto [seq, id] : assigned) {
    pb::AssignedId* a = m.add_assigned();
    a->set_seq(seq);
    a->set_remote_id(std::to_string(id));
  }
  return MakeFrame(1, m);
}

Frame Nack(uint64_t seq, pb::NackReason reason) {
  pb::Nack m;
  m.set_seq(seq);
  m.set_reason(reason);
  m.set_detail("no");
  return MakeFrame(1, m);
}

Frame End(pb::SessionOutcome outcome) {
  pb::EndSession m;
  m.set_outcome(outcome);
  m.set_new_generation(8);
  return MakeFrame(1, m);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string d = std::string(argv[1]) + "/";
  Write(d + "initial", 0, 1,
        {Reply(pb::SYNC_KIND_INITIAL), List(0, 2, {1, 2}), Body(1, pb::FETCH_RESULT_OK),
         Body(2, pb::FETCH_RESULT_NOT_FOUND), End(pb::SESSION_OUTCOME_OK)});
  Write(d + "paged", 0, 0,
        {Reply(pb::SYNC_KIND_INITIAL), List(0, 5, {1, 2}), List(2, 5, {3, 4}), List(4, 5, {5})});
  Write(d + "update", 4, 0,
        {Reply(pb::SYNC_KIND_UPDATE), Ack(1, 2, {{1, 10}}),
         Nack(3, pb::NACK_REASON_UNKNOWN_REMOTE_ID), Ack(4, 4, {}),
         Action(1, pb::ACTION_KIND_DELIVER, 11), Action(2, pb::ACTION_KIND_TRASH, 10),
         Action(3, pb::ACTION_KIND_RESTORE, 10), Action(4, pb::ACTION_KIND_DESTROY, 10),
         MakeFrame(1, pb::SyncComplete()), End(pb::SESSION_OUTCOME_OK)});
  Write(d + "temporary_nack", 2, 0,
        {Reply(pb::SYNC_KIND_UPDATE), Nack(1, pb::NACK_REASON_STORE_FULL)});
  pb::Error e;
  e.set_code(pb::ERROR_CODE_INTERNAL);
  e.set_detail("broken");
  Write(d + "error", 0, 0, {Reply(pb::SYNC_KIND_UPDATE), MakeFrame(1, e)});
  Write(d + "aborted", 1, 1, {End(pb::SESSION_OUTCOME_ABORTED)});
  // Regression: an ACK ending at seq 2^64-1 used to spin forever.
  Write(d + "ack_top_seq", 3, 0, {Ack(UINT64_MAX - 3, UINT64_MAX, {})});
  return 0;
}
