// Per-message semantic checks: every sample frame is valid, and each rule
// rejects the value it is about with a message naming the field.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "unit/wire/sample_frames.h"
#include "wire/limits.h"
#include "wire/message_validator.h"

namespace mobilesync::wire {
namespace {

using testing::SampleFrames;

Frame SampleOf(FrameType type) {
  for (Frame& f : SampleFrames()) {
    if (f.type() == type) return f;
  }
  ADD_FAILURE() << "no sample for " << FrameTypeName(type);
  return Frame();
}

void ExpectInvalid(Frame f, const std::string& field) {
  Status s = ValidateFrame(f);
  EXPECT_TRUE(s.IsInvalidArgument()) << field << ": " << s.ToString();
  EXPECT_NE(std::string::npos, s.ToString().find(field)) << s.ToString();
}

template <typename T>
void ExpectInvalidAfter(FrameType type, const std::function<void(T*, Frame*)>& mutate,
                        const std::string& field) {
  Frame f = SampleOf(type);
  mutate(f.As<T>(), &f);
  ExpectInvalid(std::move(f), field);
}

TEST(MessageValidator, AcceptsEverySampleFrame) {
  for (const Frame& f : SampleFrames()) {
    Status s = ValidateFrame(f);
    EXPECT_TRUE(s.ok()) << FrameTypeName(f.type()) << ": " << s.ToString();
  }
  for (int k = pb::ActionKind_MIN + 1; k <= pb::ActionKind_MAX; ++k) {
    Frame f =
        testing::SampleAction(1, 1, static_cast<pb::ActionKind>(k), k != pb::ACTION_KIND_DELIVER);
    EXPECT_TRUE(ValidateFrame(f).ok()) << k;
  }
}

TEST(MessageValidator, RejectsBadHello) {
  using M = pb::Hello;
  ExpectInvalidAfter<M>(
      FrameType::kHello, [](M* m, Frame*) { m->set_min_version(0); }, "min_version");
  ExpectInvalidAfter<M>(
      FrameType::kHello, [](M* m, Frame*) { m->set_min_version(3); }, "max_version");
  ExpectInvalidAfter<M>(
      FrameType::kHello, [](M* m, Frame*) { m->clear_agent_name(); }, "agent_name: missing");
  ExpectInvalidAfter<M>(
      FrameType::kHello,
      [](M* m, Frame*) { m->set_deployment_token(std::string(kMaxTokenBytes + 1, 't')); },
      "deployment_token: longer than kMaxTokenBytes");
  ExpectInvalidAfter<M>(
      FrameType::kHello, [](M* m, Frame*) { m->set_max_window(0); }, "max_window");
  ExpectInvalidAfter<M>(
      FrameType::kHello, [](M* m, Frame*) { m->set_max_window(kMaxWindow + 1); }, "max_window");
  ExpectInvalidAfter<M>(
      FrameType::kHello,
      [](M* m, Frame*) {
        for (size_t i = 0; i < kMaxCapabilities; ++i) m->add_capabilities("c");
      },
      "capabilities");
  ExpectInvalidAfter<M>(
      FrameType::kHello, [](M* m, Frame*) { m->add_capabilities(""); }, "capabilities");
  ExpectInvalidAfter<M>(
      FrameType::kHello,
      [](M* m, Frame*) { m->set_max_message_bytes(uint64_t{kMaxBodyBytes} + 1); },
      "max_message_bytes");
}

TEST(MessageValidator, RejectsBadWelcome) {
  using M = pb::Welcome;
  ExpectInvalidAfter<M>(
      FrameType::kWelcome, [](M* m, Frame*) { m->set_version(0); }, "version");
  ExpectInvalidAfter<M>(
      FrameType::kWelcome, [](M* m, Frame*) { m->set_window(0); }, "window");
  ExpectInvalidAfter<M>(
      FrameType::kWelcome, [](M* m, Frame*) { m->set_ping_interval_seconds(86400); },
      "ping_interval_seconds");
}

TEST(MessageValidator, RejectsMissingOrUnknownEnums) {
  ExpectInvalidAfter<pb::Error>(
      FrameType::kError, [](pb::Error* m, Frame*) { m->set_code({}); }, "code: missing");
  ExpectInvalidAfter<pb::Error>(
      FrameType::kError, [](pb::Error* m, Frame*) { m->set_code(static_cast<pb::ErrorCode>(99)); },
      "code: unknown value 99");
  ExpectInvalidAfter<pb::SyncRequest>(
      FrameType::kSyncRequest,
      [](pb::SyncRequest* m, Frame*) { m->set_reason(static_cast<pb::SyncReason>(-1)); },
      "reason: unknown value -1");
  ExpectInvalidAfter<pb::BeginSessionReply>(
      FrameType::kBeginSessionReply,
      [](pb::BeginSessionReply* m, Frame*) { m->set_kind(pb::SYNC_KIND_UNSPECIFIED); },
      "kind: missing");
  ExpectInvalidAfter<pb::Nack>(
      FrameType::kNack, [](pb::Nack* m, Frame*) { m->set_reason(static_cast<pb::NackReason>(7)); },
      "reason");
  ExpectInvalidAfter<pb::EndSession>(
      FrameType::kEndSession, [](pb::EndSession* m, Frame*) { m->clear_outcome(); }, "outcome");
  ExpectInvalidAfter<pb::Action>(
      FrameType::kAction,
      [](pb::Action* m, Frame*) { m->set_kind(static_cast<pb::ActionKind>(10)); },
      "kind: unknown value 10");
  ExpectInvalidAfter<pb::Action>(
      FrameType::kAction,
      [](pb::Action* m, Frame*) { m->set_state(static_cast<pb::MessageState>(4)); }, "state");
}

TEST(MessageValidator, RejectsBadUserNames) {
  using M = pb::BeginSession;
  ExpectInvalidAfter<M>(
      FrameType::kBeginSession, [](M* m, Frame*) { m->clear_user(); }, "user: missing");
  ExpectInvalidAfter<M>(
      FrameType::kBeginSession,
      [](M* m, Frame*) { m->set_user(std::string(kMaxUserBytes + 1, 'u')); },
      "user: not a valid user name");
  ExpectInvalidAfter<M>(
      FrameType::kBeginSession, [](M* m, Frame*) { m->set_user("a\nb"); }, "user");
  ExpectInvalidAfter<M>(
      FrameType::kBeginSession, [](M* m, Frame*) { m->set_user("a b"); }, "user");
  ExpectInvalidAfter<M>(
      FrameType::kBeginSession, [](M* m, Frame*) { m->set_user("\xff"); },
      "user: not a valid user name");
  EXPECT_TRUE(IsValidUserName(std::string(kMaxUserBytes, 'u')));
  EXPECT_TRUE(IsValidUserName("j\xc3\xb6rg@example.org"));
}

TEST(MessageValidator, RejectsBadRemoteIds) {
  using M = pb::Fetch;
  ExpectInvalidAfter<M>(
      FrameType::kFetch, [](M* m, Frame*) { m->clear_remote_id(); }, "remote_id: missing");
  ExpectInvalidAfter<M>(
      FrameType::kFetch,
      [](M* m, Frame*) { m->set_remote_id(std::string(kMaxRemoteIdBytes + 1, '1')); },
      "remote_id: not a valid remote id");
  ExpectInvalidAfter<M>(
      FrameType::kFetch, [](M* m, Frame*) { m->set_remote_id("1 2"); }, "remote_id");
  ExpectInvalidAfter<M>(
      FrameType::kFetch, [](M* m, Frame*) { m->set_request_id(0); }, "request_id: missing");
  EXPECT_TRUE(IsValidRemoteId(std::string(kMaxRemoteIdBytes, '1')));
}

TEST(MessageValidator, RejectsBadLists) {
  using M = pb::List;
  ExpectInvalidAfter<M>(
      FrameType::kList,
      [](M* m, Frame*) {
        m->set_total(kMaxListEntries + 1);
        for (uint32_t i = 0; i <= kMaxListEntries; ++i) {
          *m->add_entries() = m->entries(0);
        }
      },
      "entries: more than kMaxListEntries");
  ExpectInvalidAfter<M>(
      FrameType::kList, [](M* m, Frame*) { m->set_total(2); }, "entries: beyond total");
  ExpectInvalidAfter<M>(
      FrameType::kList, [](M* m, Frame*) { m->mutable_entries(1)->clear_state(); },
      "entries.state: missing");
  ExpectInvalidAfter<M>(
      FrameType::kList, [](M* m, Frame*) { m->mutable_entries(2)->set_date(-1); }, "entries.date");
  ExpectInvalidAfter<M>(
      FrameType::kList,
      [](M* m, Frame*) {
        m->mutable_entries(0)->set_message_id(std::string(kMaxMessageIdBytes + 1, 'x'));
      },
      "entries.message_id: longer than 998");
  ExpectInvalidAfter<M>(
      FrameType::kList, [](M* m, Frame*) { m->add_destroyed_ids("7"); },
      "destroyed_ids: beyond destroyed_total");
  ExpectInvalidAfter<M>(
      FrameType::kList,
      [](M* m, Frame*) {
        m->set_destroyed_total(1);
        m->add_destroyed_ids("7 x");
      },
      "destroyed_ids: not a valid remote id");
  ExpectInvalidAfter<M>(
      FrameType::kList, [](M* m, Frame*) { m->set_destroyed_total(kMaxRemoteWindow + 1); },
      "destroyed_total: over kMaxRemoteWindow");
  ExpectInvalidAfter<pb::ListRequest>(
      FrameType::kListRequest, [](pb::ListRequest* m, Frame*) { m->set_limit(0); }, "limit");
  ExpectInvalidAfter<pb::ListRequest>(
      FrameType::kListRequest,
      [](pb::ListRequest* m, Frame*) { m->set_limit(kMaxListEntries + 1); }, "limit");
}

// Both lists are paged from one offset: a page past the end of the shorter
// carries none of it and is valid (an initial sync over a window of more
// than one page, with no destroy pending, was refused at its second page).
TEST(MessageValidator, ListPagesPastTheEndOfTheShorterListAreValid) {
  Frame f = SampleOf(FrameType::kList);
  pb::List* m = f.As<pb::List>();
  ASSERT_NE(m, nullptr);
  m->set_offset(kMaxListEntries);
  m->set_total(kMaxListEntries + m->entries_size());
  m->clear_destroyed_ids();
  m->set_destroyed_total(0);
  EXPECT_TRUE(ValidateFrame(f).ok()) << ValidateFrame(f).ToString();
  m->set_destroyed_total(2);
  EXPECT_TRUE(ValidateFrame(f).ok()) << ValidateFrame(f).ToString();
  m->clear_entries();
  m->set_total(3);
  m->set_destroyed_total(kMaxListEntries + 1);
  m->add_destroyed_ids("7");
  EXPECT_TRUE(ValidateFrame(f).ok()) << ValidateFrame(f).ToString();
  m->add_destroyed_ids("8");
  EXPECT_FALSE(ValidateFrame(f).ok());
}

TEST(MessageValidator, RejectsBodyRulesOfMessageBody) {
  using M = pb::MessageBody;
  ExpectInvalidAfter<M>(
      FrameType::kMessageBody, [](M*, Frame* f) { f->body.clear(); },
      "body: missing for FETCH_RESULT_OK");
  ExpectInvalidAfter<M>(
      FrameType::kMessageBody, [](M* m, Frame*) { m->set_result(pb::FETCH_RESULT_NOT_FOUND); },
      "body: present without FETCH_RESULT_OK");
}

TEST(MessageValidator, RejectsActionsMissingWhatTheirKindNeeds) {
  using M = pb::Action;
  ExpectInvalidAfter<M>(
      FrameType::kAction, [](M* m, Frame*) { m->set_seq(0); }, "seq: missing");
  ExpectInvalidAfter<M>(
      FrameType::kAction, [](M*, Frame* f) { f->body.clear(); }, "body: missing");
  ExpectInvalidAfter<M>(
      FrameType::kAction, [](M* m, Frame*) { m->set_remote_id("r1"); },
      "exactly one of remote_id and insert_key");
  ExpectInvalidAfter<M>(
      FrameType::kAction, [](M* m, Frame*) { m->clear_insert_key(); },
      "exactly one of remote_id and insert_key");
  ExpectInvalidAfter<M>(
      FrameType::kAction, [](M* m, Frame*) { m->clear_state(); }, "state: missing");
  Frame read = testing::SampleAction(1, 1, pb::ACTION_KIND_MARK_READ);
  read.body = "x";
  ExpectInvalid(read, "body: not allowed");
  read = testing::SampleAction(1, 1, pb::ACTION_KIND_DESTROY);
  read.As<M>()->clear_remote_id();
  ExpectInvalid(read, "remote_id: missing");
  read = testing::SampleAction(1, 1, pb::ACTION_KIND_UNMAP);
  read.As<M>()->set_insert_key("k");
  ExpectInvalid(read, "insert_key: not allowed");
  Frame deliver = testing::SampleAction(1, 1, pb::ACTION_KIND_DELIVER, false);
  deliver.body.clear();
  ExpectInvalid(deliver, "body: missing");
}

TEST(MessageValidator, RejectsBadAcks) {
  using M = pb::Ack;
  ExpectInvalidAfter<M>(
      FrameType::kAck, [](M* m, Frame*) { m->set_first_seq(0); }, "first_seq: missing");
  ExpectInvalidAfter<M>(
      FrameType::kAck,
      [](M* m, Frame*) {
        m->set_first_seq(5);
        m->set_last_seq(4);
      },
      "last_seq: below first_seq");
  ExpectInvalidAfter<M>(
      FrameType::kAck, [](M* m, Frame*) { m->set_last_seq(1 + kMaxWindow); },
      "covers more than kMaxWindow");
  ExpectInvalidAfter<M>(
      FrameType::kAck, [](M* m, Frame*) { m->mutable_assigned(0)->set_seq(2); },
      "assigned.seq: outside");
  ExpectInvalidAfter<M>(
      FrameType::kAck,
      [](M* m, Frame*) {
        m->set_last_seq(2);
        *m->add_assigned() = m->assigned(0);
      },
      "assigned.seq: duplicate");
  ExpectInvalidAfter<M>(
      FrameType::kAck, [](M* m, Frame*) { m->mutable_assigned(0)->clear_remote_id(); },
      "assigned.remote_id");
}

TEST(MessageValidator, ChecksUtf8Strictly) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));  // e-acute, euro, emoji
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));                      // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // over U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xe2\x28\xa1"));      // bad continuation
  ExpectInvalidAfter<pb::Error>(
      FrameType::kError, [](pb::Error* m, Frame*) { m->set_detail("bad \xfe"); },
      "detail: not UTF-8");
  ExpectInvalidAfter<pb::Hello>(
      FrameType::kHello, [](pb::Hello* m, Frame*) { m->add_capabilities("\x80"); },
      "capabilities: not UTF-8");
}

TEST(MessageValidator, RejectsOtherBadValues) {
  ExpectInvalidAfter<pb::BeginSessionReply>(
      FrameType::kBeginSessionReply,
      [](pb::BeginSessionReply* m, Frame*) { m->set_server_generation(0); },
      "UPDATE without a server generation");
  ExpectInvalidAfter<pb::BeginSessionReply>(
      FrameType::kBeginSessionReply,
      [](pb::BeginSessionReply* m, Frame*) { m->set_window_size(0); }, "window_size");
  ExpectInvalidAfter<pb::Error>(
      FrameType::kError,
      [](pb::Error* m, Frame*) { m->set_detail(std::string(kMaxDetailBytes + 1, 'd')); },
      "detail: longer than 1024");
  ExpectInvalidAfter<pb::Ping>(
      FrameType::kPing, [](pb::Ping*, Frame* f) { f->body = "x"; },
      "body: frame type carries no body");
  ExpectInvalid(Frame(), "HELLO");  // default frame: a HELLO with nothing set
  Frame none{0, std::monostate(), ""};
  EXPECT_TRUE(ValidateFrame(none).IsInvalidArgument());
}

}  // namespace
}  // namespace mobilesync::wire
