// Valid sample frames for the wire tests, the fuzz seeds and the benchmark.
#ifndef MOBILESYNC_TESTS_UNIT_WIRE_SAMPLE_FRAMES_H_
#define MOBILESYNC_TESTS_UNIT_WIRE_SAMPLE_FRAMES_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "wire/frame.h"

namespace mobilesync::wire::testing {

inline std::string SampleBody(size_t size, char seed = 'a') {
  std::string body;
  body.reserve(size);
  static const char kHead[] = "From: a@example.org\r\nSubject: test\r\n\r\n";
  body.append(kHead, std::min(size, sizeof(kHead) - 1));
  while (body.size() < size) body.push_back(static_cast<char>(seed + body.size() % 23));
  return body;
}

inline Frame SampleHello() {
  pb::Hello m;
  m.set_min_version(1);
  m.set_max_version(1);
  m.set_agent_name("agent.example.org");
  m.set_deployment_token("0123456789abcdef0123456789abcdef");
  m.add_capabilities("trigger-mail");
  m.set_max_window(32);
  m.set_max_message_bytes(50u << 20);
  return MakeFrame(0, m);
}

inline Frame SampleWelcome() {
  pb::Welcome m;
  m.set_version(1);
  m.set_server_name("mobile.example.net");
  m.add_capabilities("trigger-mail");
  m.set_window(16);
  m.set_max_message_bytes(25u << 20);
  m.set_ping_interval_seconds(60);
  return MakeFrame(0, m);
}

inline Frame SampleAction(uint32_t session, uint64_t seq, pb::ActionKind kind,
                          bool from_agent = true) {
  pb::Action m;
  m.set_seq(seq);
  m.set_kind(kind);
  std::string body;
  if (kind == pb::ACTION_KIND_INSERT || kind == pb::ACTION_KIND_FILED_AS_SENT) {
    if (from_agent) {
      m.set_insert_key("INBOX/1700000000/" + std::to_string(seq));
    } else {
      m.set_remote_id("r" + std::to_string(1000 + seq));
    }
    m.set_date(1700000000 + static_cast<int64_t>(seq));
    if (kind == pb::ACTION_KIND_INSERT) m.set_state(pb::MESSAGE_STATE_UNREAD);
    m.set_message_guid("7f1a2b3c4d5e6f708192a3b4c5d6e7f8");
    m.set_message_id("<" + std::to_string(seq) + "@example.org>");
    body = SampleBody(200 + seq);
  } else if (kind == pb::ACTION_KIND_DELIVER) {
    m.set_remote_id("out" + std::to_string(seq));
    body = SampleBody(300);
  } else {
    m.set_remote_id("r" + std::to_string(seq));
  }
  return MakeFrame(session, m, body);
}

inline Frame SampleAck(uint32_t session, uint64_t first, uint64_t last,
                       std::vector<uint64_t> assigned = {}) {
  pb::Ack m;
  m.set_first_seq(first);
  m.set_last_seq(last);
  for (uint64_t seq : assigned) {
    pb::AssignedId* a = m.add_assigned();
    a->set_seq(seq);
    a->set_remote_id("new" + std::to_string(seq));
  }
  return MakeFrame(session, m);
}

inline Frame SampleBeginSessionReply(uint32_t session, pb::SyncKind kind) {
  pb::BeginSessionReply m;
  m.set_server_generation(kind == pb::SYNC_KIND_UPDATE ? 77 : 0);
  m.set_kind(kind);
  m.set_window_size(6);
  m.set_message_count(5);
  return MakeFrame(session, m);
}

inline Frame SampleEndSession(uint32_t session, bool from_agent, bool ok = true) {
  pb::EndSession m;
  m.set_outcome(ok ? pb::SESSION_OUTCOME_OK : pb::SESSION_OUTCOME_ABORTED);
  if (!from_agent && ok) m.set_new_generation(78);
  return MakeFrame(session, m);
}

// One valid frame of every type, in MS_WIRE_FRAME_TYPES order.
inline std::vector<Frame> SampleFrames() {
  std::vector<Frame> frames;
  frames.push_back(SampleHello());
  frames.push_back(SampleWelcome());
  {
    pb::Ping m;
    m.set_nonce(0x1122334455667788ull);
    frames.push_back(MakeFrame(0, m));
  }
  {
    pb::Pong m;
    m.set_nonce(0x1122334455667788ull);
    frames.push_back(MakeFrame(0, m));
  }
  {
    pb::Error m;
    m.set_code(pb::ERROR_CODE_USER_NOT_PERMITTED);
    m.set_detail("agent is not provisioned for this user");
    frames.push_back(MakeFrame(7, m));
  }
  {
    pb::SyncRequest m;
    m.set_user("alice@example.org");
    m.set_reason(pb::SYNC_REASON_REMOTE_CHANGE);
    frames.push_back(MakeFrame(0, m));
  }
  {
    pb::BeginSession m;
    m.set_user("alice@example.org");
    m.set_agent_generation(77);
    frames.push_back(MakeFrame(7, m));
  }
  frames.push_back(SampleBeginSessionReply(7, pb::SYNC_KIND_UPDATE));
  {
    pb::ListRequest m;
    m.set_offset(0);
    m.set_limit(100);
    frames.push_back(MakeFrame(7, m));
  }
  {
    pb::List m;
    m.set_offset(0);
    m.set_total(3);
    for (int i = 0; i < 3; ++i) {
      pb::ListEntry* e = m.add_entries();
      e->set_remote_id(std::to_string(100 + i));
      e->set_date(1700000000 - i * 60);
      e->set_size(4096 + i);
      e->set_state(i == 0 ? pb::MESSAGE_STATE_UNREAD : pb::MESSAGE_STATE_READ);
      e->set_message_guid("0011223344556677889900aabbccddee");
      e->set_message_id("<m" + std::to_string(i) + "@example.org>");
    }
    frames.push_back(MakeFrame(7, m));
  }
  {
    pb::Fetch m;
    m.set_request_id(1);
    m.set_remote_id("100");
    frames.push_back(MakeFrame(7, m));
  }
  {
    pb::MessageBody m;
    m.set_request_id(1);
    m.set_remote_id("100");
    m.set_result(pb::FETCH_RESULT_OK);
    m.set_date(1700000000);
    m.set_state(pb::MESSAGE_STATE_UNREAD);
    frames.push_back(MakeFrame(7, m, SampleBody(4096)));
  }
  frames.push_back(SampleAction(7, 1, pb::ACTION_KIND_INSERT));
  frames.push_back(SampleAck(7, 1, 1, {1}));
  {
    pb::Nack m;
    m.set_seq(2);
    m.set_reason(pb::NACK_REASON_UNKNOWN_REMOTE_ID);
    m.set_detail("no message 16");
    frames.push_back(MakeFrame(7, m));
  }
  {
    pb::SwapRequest m;
    m.set_last_seq(2);
    frames.push_back(MakeFrame(7, m));
  }
  {
    pb::SyncComplete m;
    m.set_last_seq(2);
    m.set_free_slots(1);
    frames.push_back(MakeFrame(7, m));
  }
  frames.push_back(SampleEndSession(7, /*from_agent=*/false));
  return frames;
}

}  // namespace mobilesync::wire::testing

#endif  // MOBILESYNC_TESTS_UNIT_WIRE_SAMPLE_FRAMES_H_
