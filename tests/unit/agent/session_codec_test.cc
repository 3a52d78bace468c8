// SessionCodec: the bridge between the engine's frames and the wire's.
#include "sync_agent/session_codec.h"

#include <gtest/gtest.h>

#include "wire/message_validator.h"

namespace mobilesync::agent {
namespace {

namespace pb = wire::pb;
using engine::FrameKind;

engine::Frame Hello(engine::SyncGeneration g) {
  engine::Frame f;
  f.kind = FrameKind::kHello;
  f.generation = g;
  return f;
}

engine::Frame InsertAction(uint64_t tag, uint32_t uid, const std::string& key) {
  engine::Frame f;
  f.kind = FrameKind::kAction;
  f.tag = tag;
  f.action.kind = engine::ActionKind::kInsert;
  f.action.local = engine::LocalId{"INBOX", 77, uid};
  f.action.meta.match_key = key;
  f.action.meta.date = 1700000000;
  f.action.meta.state = engine::MessageState::kRead;
  return f;
}

engine::Frame StateAction(uint64_t tag, engine::ActionKind kind, engine::RemoteId remote) {
  engine::Frame f;
  f.kind = FrameKind::kAction;
  f.tag = tag;
  f.action.kind = kind;
  f.action.remote = remote;
  return f;
}

TEST(SessionCodecTest, RemoteIdsAreCanonicalDecimal) {
  engine::RemoteId id = 0;
  EXPECT_TRUE(ParseDecimalRemoteId("17", &id));
  EXPECT_EQ(id, 17u);
  EXPECT_TRUE(ParseDecimalRemoteId("18446744073709551615", &id));
  EXPECT_FALSE(ParseDecimalRemoteId("18446744073709551616", &id));
  EXPECT_FALSE(ParseDecimalRemoteId("0", &id));
  EXPECT_FALSE(ParseDecimalRemoteId("017", &id));
  EXPECT_FALSE(ParseDecimalRemoteId("", &id));
  EXPECT_FALSE(ParseDecimalRemoteId("abc", &id));
  EXPECT_FALSE(ParseDecimalRemoteId("1 2", &id));
}

TEST(SessionCodecTest, HelloBecomesBeginSessionOnce) {
  SessionCodec c(3, "alice");
  std::vector<wire::Frame> out;
  ASSERT_TRUE(c.Encode(Hello(42), {}, &out).ok());
  ASSERT_TRUE(c.Encode(Hello(42), {}, &out).ok());  // engine re-send
  ASSERT_EQ(out.size(), 1u);
  const auto* b = out[0].As<pb::BeginSession>();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(out[0].session_id, 3u);
  EXPECT_EQ(b->user(), "alice");
  EXPECT_EQ(b->agent_generation(), 42u);
  EXPECT_TRUE(wire::ValidateFrame(out[0]).ok());
}

TEST(SessionCodecTest, ActionsGetWireSeqsInSendOrderAndAcksMapBack) {
  SessionCodec c(1, "alice");
  std::vector<wire::Frame> out;
  // Engine tags need not be 1, 2, 3: the wire's seqs must be.
  ASSERT_TRUE(c.NeedsBody(InsertAction(10, 5, "<a@x>")));
  ASSERT_TRUE(c.Encode(InsertAction(10, 5, "<a@x>"), "Subject: a\r\n\r\nA", &out).ok());
  ASSERT_FALSE(c.NeedsBody(InsertAction(10, 5, "<a@x>")));
  ASSERT_TRUE(c.Encode(StateAction(7, engine::ActionKind::kMarkRead, 99), {}, &out).ok());
  ASSERT_TRUE(c.Encode(InsertAction(10, 5, "<a@x>"), "again", &out).ok());  // re-send
  ASSERT_EQ(out.size(), 2u);
  const auto* a1 = out[0].As<pb::Action>();
  const auto* a2 = out[1].As<pb::Action>();
  ASSERT_NE(a1, nullptr);
  ASSERT_NE(a2, nullptr);
  EXPECT_EQ(a1->seq(), 1u);
  EXPECT_EQ(a1->kind(), pb::ACTION_KIND_INSERT);
  EXPECT_EQ(a1->insert_key(), "INBOX/77/5");
  EXPECT_EQ(a1->message_id(), "<a@x>");
  EXPECT_EQ(a1->state(), pb::MESSAGE_STATE_READ);
  EXPECT_EQ(out[0].body, "Subject: a\r\n\r\nA");
  EXPECT_EQ(a2->seq(), 2u);
  EXPECT_EQ(a2->remote_id(), "99");
  for (const auto& f : out) EXPECT_TRUE(wire::ValidateFrame(f).ok());
  EXPECT_EQ(c.actions_sent(), 2u);

  pb::Ack ack;
  ack.set_first_seq(1);
  ack.set_last_seq(2);
  pb::AssignedId* as = ack.add_assigned();
  as->set_seq(1);
  as->set_remote_id("123");
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, ack), &d).ok());
  ASSERT_EQ(d.frames.size(), 2u);
  EXPECT_EQ(d.frames[0].kind, FrameKind::kAck);
  EXPECT_EQ(d.frames[0].tag, 10u);
  EXPECT_EQ(d.frames[0].remote, 123u);
  EXPECT_EQ(d.frames[1].tag, 7u);
  EXPECT_EQ(d.frames[1].remote, engine::kNoRemoteId);
}

// Found by reading while writing tests/fuzz/session_codec_fuzzer.cc: an
// ACK up to seq 2^64-1 passes the validator (a range under the window) and
// used to spin the agent forever (the loop counter wrapped to 0).
TEST(SessionCodecTest, AckUpToTheLargestSeqEndsAndAcksNothingUnsent) {
  SessionCodec c(1, "alice");
  std::vector<wire::Frame> out;
  ASSERT_TRUE(c.Encode(StateAction(7, engine::ActionKind::kMarkRead, 99), {}, &out).ok());
  pb::Ack ack;
  ack.set_first_seq(UINT64_MAX - 3);
  ack.set_last_seq(UINT64_MAX);
  wire::Frame f = wire::MakeFrame(1, ack);
  ASSERT_TRUE(wire::ValidateFrame(f).ok());
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(std::move(f), &d).ok());
  EXPECT_TRUE(d.frames.empty());

  // The whole range acknowledges the one action once.
  ack.set_first_seq(1);
  ack.set_last_seq(1);
  d = {};
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, ack), &d).ok());
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].tag, 7u);
}

TEST(SessionCodecTest, InsertWithoutBodyIsRefused) {
  SessionCodec c(1, "alice");
  std::vector<wire::Frame> out;
  EXPECT_FALSE(c.Encode(InsertAction(1, 5, "<a@x>"), {}, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(SessionCodecTest, GuidKeysTravelAsGuidAndComeBackAsTheSameKey) {
  SessionCodec c(1, "alice");
  std::vector<wire::Frame> out;
  ASSERT_TRUE(c.Encode(InsertAction(1, 5, "f00dbabe"), "x", &out).ok());
  const auto* a = out[0].As<pb::Action>();
  EXPECT_EQ(a->message_guid(), "f00dbabe");
  EXPECT_TRUE(a->message_id().empty());

  pb::List list;
  list.set_total(2);
  pb::ListEntry* e = list.add_entries();
  e->set_remote_id("5");
  e->set_state(pb::MESSAGE_STATE_UNREAD);
  e->set_message_guid("f00dbabe");
  e = list.add_entries();
  e->set_remote_id("6");
  e->set_state(pb::MESSAGE_STATE_TRASHED);
  e->set_message_guid("g");
  e->set_message_id("<m@x>");
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, list), &d).ok());
  ASSERT_EQ(d.frames.size(), 1u);
  ASSERT_EQ(d.frames[0].messages.size(), 2u);
  EXPECT_EQ(d.frames[0].messages[0].meta.match_key, "f00dbabe");
  EXPECT_EQ(d.frames[0].messages[1].meta.match_key, "<m@x>");
  EXPECT_EQ(d.frames[0].messages[1].meta.state, engine::MessageState::kTrash);
}

TEST(SessionCodecTest, ListPagesAreCollectedIntoOneList) {
  SessionCodec c(2, "alice");
  std::vector<wire::Frame> out;
  engine::Frame req;
  req.kind = FrameKind::kListRequest;
  ASSERT_TRUE(c.Encode(req, {}, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  pb::List page1;
  page1.set_offset(0);
  page1.set_total(3);
  for (int i = 1; i <= 2; ++i) {
    pb::ListEntry* e = page1.add_entries();
    e->set_remote_id(std::to_string(i));
    e->set_state(pb::MESSAGE_STATE_READ);
  }
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(2, page1), &d).ok());
  EXPECT_TRUE(d.frames.empty());
  ASSERT_EQ(d.replies.size(), 1u);
  EXPECT_EQ(d.replies[0].As<pb::ListRequest>()->offset(), 2u);
  pb::List page2;
  page2.set_offset(2);
  page2.set_total(3);
  page2.add_entries()->set_remote_id("3");
  page2.mutable_entries(0)->set_state(pb::MESSAGE_STATE_UNREAD);
  SessionCodec::Decoded d2;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(2, page2), &d2).ok());
  ASSERT_EQ(d2.frames.size(), 1u);
  ASSERT_EQ(d2.frames[0].messages.size(), 3u);
  EXPECT_EQ(d2.frames[0].messages[2].id, 3u);
}

// Destroyed ids are paged from the same offset as the entries, and may
// outlast them: the agent asks until both are complete.
TEST(SessionCodecTest, DestroyedIdsArePagedWithTheList) {
  SessionCodec c(3, "alice");
  std::vector<wire::Frame> out;
  engine::Frame req;
  req.kind = FrameKind::kListRequest;
  ASSERT_TRUE(c.Encode(req, {}, &out).ok());
  pb::List page1;
  page1.set_offset(0);
  page1.set_total(1);
  page1.set_destroyed_total(3);
  page1.add_entries()->set_remote_id("1");
  page1.mutable_entries(0)->set_state(pb::MESSAGE_STATE_READ);
  page1.add_destroyed_ids("7");
  page1.add_destroyed_ids("8");
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(3, page1), &d).ok());
  EXPECT_TRUE(d.frames.empty());
  ASSERT_EQ(d.replies.size(), 1u);
  EXPECT_EQ(d.replies[0].As<pb::ListRequest>()->offset(), 2u);
  pb::List page2;
  page2.set_offset(2);
  page2.set_total(1);
  page2.set_destroyed_total(3);
  page2.add_destroyed_ids("9");
  SessionCodec::Decoded d2;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(3, page2), &d2).ok());
  ASSERT_EQ(d2.frames.size(), 1u);
  EXPECT_EQ(d2.frames[0].messages.size(), 1u);
  EXPECT_EQ(d2.frames[0].ids, (std::vector<engine::RemoteId>{7, 8, 9}));

  // A destroyed id that is not a decimal id is refused.
  SessionCodec c2(4, "alice");
  ASSERT_TRUE(c2.Encode(req, {}, &out).ok());
  pb::List bad;
  bad.set_destroyed_total(1);
  bad.add_destroyed_ids("x7");
  SessionCodec::Decoded d3;
  EXPECT_FALSE(c2.Decode(wire::MakeFrame(4, bad), &d3).ok());
}

TEST(SessionCodecTest, FetchedBodyKeepsTheListedKeyAndIsKeptForTheAppend) {
  SessionCodec c(1, "alice");
  pb::List list;
  list.set_total(1);
  pb::ListEntry* e = list.add_entries();
  e->set_remote_id("9");
  e->set_state(pb::MESSAGE_STATE_READ);
  e->set_message_id("<nine@x>");
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, list), &d).ok());

  std::vector<wire::Frame> out;
  engine::Frame fetch;
  fetch.kind = FrameKind::kFetch;
  fetch.ids = {9, 9};
  ASSERT_TRUE(c.Encode(fetch, {}, &out).ok());
  ASSERT_TRUE(c.Encode(fetch, {}, &out).ok());  // re-send: nothing new
  ASSERT_EQ(out.size(), 1u);
  pb::MessageBody mb;
  mb.set_request_id(out[0].As<pb::Fetch>()->request_id());
  mb.set_remote_id("9");
  mb.set_result(pb::FETCH_RESULT_OK);
  mb.set_state(pb::MESSAGE_STATE_READ);
  mb.set_date(1700000001);
  SessionCodec::Decoded d2;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, mb, std::string("BODY9")), &d2).ok());
  ASSERT_EQ(d2.frames.size(), 1u);
  EXPECT_EQ(d2.frames[0].kind, FrameKind::kFetched);
  ASSERT_EQ(d2.frames[0].messages.size(), 1u);
  EXPECT_EQ(d2.frames[0].messages[0].meta.match_key, "<nine@x>");
  EXPECT_EQ(d2.frames[0].messages[0].meta.date, 1700000001);
  EXPECT_TRUE(c.HasBody(9));
  EXPECT_EQ(c.TakeBody(9), "BODY9");
  EXPECT_FALSE(c.HasBody(9));
}

TEST(SessionCodecTest, PermanentNackIsARejectedAckTemporaryNackAborts) {
  SessionCodec c(1, "alice");
  std::vector<wire::Frame> out;
  ASSERT_TRUE(c.Encode(StateAction(4, engine::ActionKind::kMoveToTrash, 5), {}, &out).ok());
  ASSERT_TRUE(c.Encode(StateAction(5, engine::ActionKind::kDestroy, 6), {}, &out).ok());
  pb::Nack n;
  n.set_seq(1);
  n.set_reason(pb::NACK_REASON_UNKNOWN_REMOTE_ID);
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, n), &d).ok());
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].tag, 4u);
  EXPECT_EQ(d.frames[0].outcome, engine::AckOutcome::kRejected);
  EXPECT_FALSE(d.temporary_failure);
  n.set_seq(2);
  n.set_reason(pb::NACK_REASON_TEMPORARY_FAILURE);
  SessionCodec::Decoded d2;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, n), &d2).ok());
  EXPECT_TRUE(d2.temporary_failure);
  EXPECT_TRUE(d2.frames.empty());
}

TEST(SessionCodecTest, ServerActionsAndTheirAcks) {
  SessionCodec c(1, "alice");
  pb::Action a;
  a.set_seq(1);
  a.set_kind(pb::ACTION_KIND_INSERT);
  a.set_remote_id("130");
  a.set_state(pb::MESSAGE_STATE_UNREAD);
  a.set_date(1700000002);
  a.set_message_id("<new@x>");
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, a, std::string("NEW")), &d).ok());
  ASSERT_EQ(d.frames.size(), 1u);
  const engine::Frame& f = d.frames[0];
  EXPECT_EQ(f.kind, FrameKind::kAction);
  EXPECT_EQ(f.tag, 1u);
  EXPECT_EQ(f.action.kind, engine::ActionKind::kInsert);
  EXPECT_EQ(f.action.remote, 130u);
  EXPECT_EQ(f.action.meta.match_key, "<new@x>");
  EXPECT_EQ(c.TakeBody(130), "NEW");

  pb::Action t;
  t.set_seq(2);
  t.set_kind(pb::ACTION_KIND_TRASH);
  t.set_remote_id("130");
  SessionCodec::Decoded d2;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, t), &d2).ok());
  EXPECT_EQ(d2.frames[0].action.meta.state, engine::MessageState::kTrash);
  EXPECT_EQ(c.actions_received(), 2u);

  engine::Frame ack;
  ack.kind = FrameKind::kAck;
  ack.tag = 2;
  std::vector<wire::Frame> out;
  ASSERT_TRUE(c.Encode(ack, {}, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].As<pb::Ack>()->first_seq(), 2u);
  EXPECT_EQ(out[0].As<pb::Ack>()->last_seq(), 2u);
}

TEST(SessionCodecTest, NonDecimalIdsFailTheSession) {
  SessionCodec c(1, "alice");
  pb::Action a;
  a.set_seq(1);
  a.set_kind(pb::ACTION_KIND_MARK_READ);
  a.set_remote_id("msg-17");
  SessionCodec::Decoded d;
  Status s = c.Decode(wire::MakeFrame(1, a), &d);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("non-decimal"), std::string::npos);
}

TEST(SessionCodecTest, CommitIsEndSessionAndTheReplyCarriesTheGeneration) {
  SessionCodec c(1, "alice");
  std::vector<wire::Frame> out;
  engine::Frame commit;
  commit.kind = FrameKind::kCommit;
  commit.generation = 5;
  ASSERT_TRUE(c.Encode(commit, {}, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].As<pb::EndSession>()->outcome(), pb::SESSION_OUTCOME_OK);
  pb::EndSession reply;
  reply.set_outcome(pb::SESSION_OUTCOME_OK);
  reply.set_new_generation(987654321);
  SessionCodec::Decoded d;
  ASSERT_TRUE(c.Decode(wire::MakeFrame(1, reply), &d).ok());
  EXPECT_TRUE(d.ended);
  EXPECT_EQ(d.end_generation, 987654321u);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].kind, FrameKind::kCommitAck);
  EXPECT_EQ(d.frames[0].generation, 987654321u);

  // Without a commit (an update sync's end) there is nothing for the engine.
  SessionCodec u(2, "alice");
  SessionCodec::Decoded du;
  ASSERT_TRUE(u.Decode(wire::MakeFrame(2, reply), &du).ok());
  EXPECT_TRUE(du.ended);
  EXPECT_TRUE(du.frames.empty());
}

TEST(SessionCodecTest, ServerErrorOrAbortEndsTheSessionWithAReason) {
  SessionCodec c(1, "alice");
  pb::Error e;
  e.set_code(pb::ERROR_CODE_SESSION_BUSY);
  e.set_detail("busy");
  SessionCodec::Decoded d;
  Status s = c.Decode(wire::MakeFrame(1, e), &d);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("SESSION_BUSY"), std::string::npos);
}

}  // namespace
}  // namespace mobilesync::agent
