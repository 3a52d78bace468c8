// Session order: the flows of docs/protocol.md pass, frames out of order fail
// and leave the state as it was.
#include <gtest/gtest.h>

#include <string>

#include "unit/wire/sample_frames.h"
#include "wire/message_validator.h"
#include "wire/session_state.h"

namespace mobilesync::wire {
namespace {

using testing::SampleAck;
using testing::SampleAction;
using testing::SampleBeginSessionReply;
using testing::SampleEndSession;
using Phase = SessionState::Phase;
using Verdict = SessionState::Verdict;

constexpr Direction kA = Direction::kAgentToServer;
constexpr Direction kS = Direction::kServerToAgent;
constexpr uint32_t kSid = 7;

Frame Begin() {
  pb::BeginSession m;
  m.set_user("alice@example.org");
  m.set_agent_generation(77);
  return MakeFrame(kSid, m);
}

Frame Swap(uint64_t last) {
  pb::SwapRequest m;
  m.set_last_seq(last);
  return MakeFrame(kSid, m);
}

Frame Complete(uint64_t last) {
  pb::SyncComplete m;
  m.set_last_seq(last);
  m.set_free_slots(1);
  return MakeFrame(kSid, m);
}

Frame Fetch(uint32_t id) {
  pb::Fetch m;
  m.set_request_id(id);
  m.set_remote_id("100");
  return MakeFrame(kSid, m);
}

Frame Body(uint32_t id) {
  pb::MessageBody m;
  m.set_request_id(id);
  m.set_remote_id("100");
  m.set_result(pb::FETCH_RESULT_OK);
  m.set_state(pb::MESSAGE_STATE_READ);
  return MakeFrame(kSid, m, "Subject: x\r\n\r\nbody");
}

Frame Nack(uint64_t seq) {
  pb::Nack m;
  m.set_seq(seq);
  m.set_reason(pb::NACK_REASON_UNKNOWN_REMOTE_ID);
  return MakeFrame(kSid, m);
}

Frame ListRequest() {
  pb::ListRequest m;
  m.set_limit(100);
  return MakeFrame(kSid, m);
}

Frame List() {
  pb::List m;
  m.set_total(0);
  return MakeFrame(kSid, m);
}

class SessionStateTest : public ::testing::Test {
 protected:
  // Expects `frame` to be valid and accepted; returns the verdict.
  Verdict Ok(Direction dir, const Frame& frame) {
    Status v = ValidateFrame(frame);
    EXPECT_TRUE(v.ok()) << v.ToString();
    Verdict verdict = Verdict::kIgnore;
    Status s = state_.Observe(dir, frame, &verdict);
    EXPECT_TRUE(s.ok()) << DescribeFrame(frame) << ": " << s.ToString();
    return verdict;
  }
  // Expects `frame` to be refused with a message containing `why`, and the
  // state to be unchanged (the same frame sequence still works after it).
  void Refused(Direction dir, const Frame& frame, const std::string& why) {
    const Phase before = state_.phase();
    const uint64_t in_a = state_.in_flight(kA), in_s = state_.in_flight(kS);
    Verdict verdict;
    Status s = state_.Observe(dir, frame, &verdict);
    EXPECT_TRUE(s.IsInvalidArgument()) << DescribeFrame(frame) << ": " << s.ToString();
    EXPECT_NE(std::string::npos, s.ToString().find(why)) << s.ToString();
    EXPECT_EQ(before, state_.phase());
    EXPECT_EQ(in_a, state_.in_flight(kA));
    EXPECT_EQ(in_s, state_.in_flight(kS));
  }
  void OpenUpdate() {
    Ok(kA, Begin());
    Ok(kS, SampleBeginSessionReply(kSid, pb::SYNC_KIND_UPDATE));
  }
  void OpenInitial() {
    Ok(kA, Begin());
    Ok(kS, SampleBeginSessionReply(kSid, pb::SYNC_KIND_INITIAL));
  }

  SessionState state_{4};
};

TEST_F(SessionStateTest, AcceptsTheUpdateSyncOfTheWorkedExample) {
  // 000_*.txt [0080]-[0083]: the agent deletes 100 and marks 16 read; the
  // server then inserts 129 and deletes 2; the pull refills the window.
  OpenUpdate();
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_DESTROY));
  Ok(kA, SampleAction(kSid, 2, pb::ACTION_KIND_MARK_READ));
  EXPECT_EQ(2u, state_.in_flight(kA));
  Ok(kS, SampleAck(kSid, 1, 2));
  Ok(kA, Swap(2));
  EXPECT_EQ(Phase::kServerPhase, state_.phase());
  Ok(kS, SampleAction(kSid, 1, pb::ACTION_KIND_INSERT, /*from_agent=*/false));
  Ok(kS, SampleAction(kSid, 2, pb::ACTION_KIND_DESTROY, false));
  Ok(kA, SampleAck(kSid, 1, 1));
  Ok(kA, SampleAck(kSid, 2, 2));
  Ok(kS, Complete(2));
  EXPECT_EQ(Phase::kPullPhase, state_.phase());
  Ok(kA, SampleAction(kSid, 3, pb::ACTION_KIND_INSERT));
  Ok(kS, SampleAck(kSid, 3, 3, {3}));
  Ok(kA, SampleEndSession(kSid, true));
  Ok(kS, SampleEndSession(kSid, false));
  EXPECT_EQ(Phase::kClosed, state_.phase());
}

TEST_F(SessionStateTest, AcceptsAnInitialSync) {
  OpenInitial();
  Ok(kA, ListRequest());
  Ok(kS, List());
  Ok(kA, Fetch(1));
  Ok(kA, Fetch(2));
  Ok(kS, Body(2));  // replies may come in any order
  Ok(kS, Body(1));
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_UNMAP));
  Ok(kA, SampleAction(kSid, 2, pb::ACTION_KIND_INSERT));
  Ok(kS, SampleAck(kSid, 1, 2, {2}));
  Ok(kA, SampleEndSession(kSid, true));
  Ok(kS, SampleEndSession(kSid, false));
  EXPECT_EQ(Phase::kClosed, state_.phase());
}

TEST_F(SessionStateTest, RejectsActionBeforeBeginSession) {
  Refused(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ), "outside the agent's phases");
  Ok(kA, Begin());
  Refused(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ), "phase OPENING");
}

TEST_F(SessionStateTest, RejectsFramesFromTheWrongSide) {
  Refused(kS, Begin(), "sent by the server");
  Ok(kA, Begin());
  Refused(kA, SampleBeginSessionReply(kSid, pb::SYNC_KIND_UPDATE), "sent by the agent");
  Ok(kS, SampleBeginSessionReply(kSid, pb::SYNC_KIND_UPDATE));
  Refused(kA, Complete(0), "sent by the agent");
  Refused(kS, Swap(0), "sent by the server");
  Refused(kS, Fetch(1), "sent by the server");
  Refused(kA, List(), "sent by the agent");
}

TEST_F(SessionStateTest, RejectsASecondBeginAndConnectionFrames) {
  Ok(kA, Begin());
  Refused(kA, Begin(), "already begun");
  Refused(kA, testing::SampleHello(), "not a session frame");
}

TEST_F(SessionStateTest, RejectsASecondSwap) {
  OpenUpdate();
  Ok(kA, Swap(0));
  Refused(kA, Swap(0), "second SWAP");
}

TEST_F(SessionStateTest, RejectsSwapInAnInitialSync) {
  OpenInitial();
  Refused(kA, Swap(0), "initial sync");
}

TEST_F(SessionStateTest, RejectsSwapThatMisstatesTheLastSeq) {
  OpenUpdate();
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_TRASH));
  Refused(kA, Swap(0), "last_seq");
  Ok(kA, Swap(1));
}

TEST_F(SessionStateTest, RejectsActionsInTheOtherSidesPhase) {
  OpenUpdate();
  Refused(kS, SampleAction(kSid, 1, pb::ACTION_KIND_INSERT, false), "before SWAP");
  Ok(kA, Swap(0));
  Refused(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ), "outside the agent's phases");
  Ok(kS, Complete(0));
  Refused(kS, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ, false), "after SYNC_COMPLETE");
  Refused(kS, Complete(0), "not after SWAP");
}

TEST_F(SessionStateTest, RejectsWrongInsertIdentification) {
  OpenUpdate();
  Refused(kA, SampleAction(kSid, 1, pb::ACTION_KIND_DELIVER, false), "DELIVER from the agent");
  Ok(kA, Swap(0));
  Refused(kS, SampleAction(kSid, 1, pb::ACTION_KIND_INSERT, /*from_agent=*/true),
          "server insert without remote_id");
}

TEST_F(SessionStateTest, RejectsASequenceGap) {
  OpenUpdate();
  Refused(kA, SampleAction(kSid, 2, pb::ACTION_KIND_MARK_READ), "sequence gap");
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ));
  Refused(kA, SampleAction(kSid, 3, pb::ACTION_KIND_MARK_READ), "sequence gap");
}

TEST_F(SessionStateTest, DuplicateSequenceIsReAckedNotApplied) {
  OpenUpdate();
  EXPECT_EQ(Verdict::kApply, Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_INSERT)));
  EXPECT_EQ(Verdict::kDuplicate, Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_INSERT)));
  EXPECT_EQ(1u, state_.in_flight(kA));
  EXPECT_EQ(Verdict::kApply, Ok(kS, SampleAck(kSid, 1, 1, {1})));
  // Re-sent after its ack: still a duplicate; the re-ack is a duplicate too.
  EXPECT_EQ(Verdict::kDuplicate, Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_INSERT)));
  EXPECT_EQ(Verdict::kDuplicate, Ok(kS, SampleAck(kSid, 1, 1, {1})));
  EXPECT_EQ(0u, state_.in_flight(kA));
}

TEST_F(SessionStateTest, RejectsMoreThanTheWindowInFlight) {
  OpenUpdate();  // window 4
  for (uint64_t seq = 1; seq <= 4; ++seq) Ok(kA, SampleAction(kSid, seq, pb::ACTION_KIND_TRASH));
  Refused(kA, SampleAction(kSid, 5, pb::ACTION_KIND_TRASH), "more than W actions in flight");
  Ok(kS, SampleAck(kSid, 1, 1));
  Ok(kA, SampleAction(kSid, 5, pb::ACTION_KIND_TRASH));
}

TEST_F(SessionStateTest, RejectsBadAcks) {
  OpenUpdate();
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_UNREAD));
  Ok(kA, SampleAction(kSid, 2, pb::ACTION_KIND_INSERT));
  Refused(kS, SampleAck(kSid, 1, 3, {2}), "acks an unsent seq");
  Refused(kS, SampleAck(kSid, 2, 2, {2}), "out of order");
  Refused(kS, SampleAck(kSid, 1, 2), "insert acked without its remote id");
  Refused(kS, SampleAck(kSid, 1, 2, {1, 2}), "no insert");
  Refused(kA, SampleAck(kSid, 1, 1), "acks an unsent seq");  // the server sent nothing
  Ok(kS, SampleAck(kSid, 1, 2, {2}));
}

TEST_F(SessionStateTest, NackAnswersAnActionInOrder) {
  OpenUpdate();
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ));
  Ok(kA, SampleAction(kSid, 2, pb::ACTION_KIND_MARK_READ));
  Refused(kS, Nack(2), "out of order");
  Refused(kS, Nack(3), "out of order");
  EXPECT_EQ(Verdict::kApply, Ok(kS, Nack(1)));
  EXPECT_EQ(Verdict::kDuplicate, Ok(kS, Nack(1)));
  Ok(kS, SampleAck(kSid, 2, 2));
  EXPECT_EQ(0u, state_.in_flight(kA));
}

TEST_F(SessionStateTest, RejectsSyncCompleteWithActionsUnanswered) {
  OpenUpdate();
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ));
  Ok(kA, Swap(1));
  Ok(kS, SampleAction(kSid, 1, pb::ACTION_KIND_TRASH, false));
  Refused(kS, Complete(1), "unacknowledged");
  Ok(kA, SampleAck(kSid, 1, 1));
  Refused(kS, Complete(1), "unacknowledged");  // the agent's action is not acked yet
  Ok(kS, SampleAck(kSid, 1, 1));
  Refused(kS, Complete(0), "last_seq");
  Ok(kS, Complete(1));
}

TEST_F(SessionStateTest, RejectsEndOkBeforeTheFlowFinished) {
  OpenUpdate();
  Refused(kA, SampleEndSession(kSid, true), "OK before the sync flow finished");
  Ok(kA, Swap(0));
  Refused(kA, SampleEndSession(kSid, true), "OK before the sync flow finished");
  Ok(kS, Complete(0));
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_INSERT));
  Refused(kA, SampleEndSession(kSid, true), "unanswered");
  Ok(kS, SampleAck(kSid, 1, 1, {1}));
  Ok(kA, Fetch(9));
  Refused(kA, SampleEndSession(kSid, true), "unanswered");
  Ok(kS, Body(9));
  Refused(kS, SampleEndSession(kSid, false), "before the agent");
  Ok(kA, SampleEndSession(kSid, true));
  Refused(kA, SampleAction(kSid, 2, pb::ACTION_KIND_INSERT), "after its END_SESSION");
  pb::EndSession no_generation;
  no_generation.set_outcome(pb::SESSION_OUTCOME_OK);
  Refused(kS, MakeFrame(kSid, no_generation), "without new_generation");
  Ok(kS, SampleEndSession(kSid, false));
}

TEST_F(SessionStateTest, IgnoresServerFramesInFlightAfterAnAbort) {
  OpenUpdate();
  Ok(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ));
  Ok(kA, SampleEndSession(kSid, true, /*ok=*/false));
  EXPECT_EQ(Verdict::kIgnore, Ok(kS, SampleAck(kSid, 1, 1)));
  Refused(kS, SampleEndSession(kSid, false, /*ok=*/true), "OK reply to an aborted session");
  Ok(kS, SampleEndSession(kSid, false, /*ok=*/false));
  Refused(kS, SampleAck(kSid, 1, 1), "session is closed");
}

TEST_F(SessionStateTest, ErrorClosesTheSession) {
  Refused(kS, testing::SampleFrames()[4], "ERROR before BEGIN_SESSION");
  Ok(kA, Begin());
  Ok(kS, testing::SampleFrames()[4]);  // e.g. USER_NOT_PERMITTED
  EXPECT_EQ(Phase::kClosed, state_.phase());
  Refused(kA, SampleAction(kSid, 1, pb::ACTION_KIND_MARK_READ), "session is closed");
}

TEST_F(SessionStateTest, MatchesFetchesAndLists) {
  OpenInitial();
  Refused(kS, Body(1), "no FETCH outstanding");
  Refused(kS, List(), "no LIST_REQUEST outstanding");
  Ok(kA, Fetch(1));
  Refused(kA, Fetch(1), "already outstanding");
  Ok(kA, Fetch(2));
  Ok(kA, Fetch(3));
  Ok(kA, Fetch(4));
  Refused(kA, Fetch(5), "more than W fetches");
  Ok(kA, ListRequest());
  Refused(kA, ListRequest(), "outstanding");
  Ok(kS, List());
  Ok(kS, Body(3));
  Refused(kS, Body(3), "no FETCH outstanding");
}

}  // namespace
}  // namespace mobilesync::wire
