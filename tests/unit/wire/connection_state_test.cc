// Connection order: handshake first and once, session ids new and routed.
#include <gtest/gtest.h>

#include <string>

#include "unit/wire/sample_frames.h"
#include "wire/connection_state.h"

namespace mobilesync::wire {
namespace {

using Verdict = SessionState::Verdict;
constexpr Direction kA = Direction::kAgentToServer;
constexpr Direction kS = Direction::kServerToAgent;

Frame Begin(uint32_t id) {
  pb::BeginSession m;
  m.set_user("u" + std::to_string(id));
  return MakeFrame(id, m);
}

Frame Ping() { return MakeFrame(0, pb::Ping()); }

Frame SessionError(uint32_t id) {
  pb::Error m;
  m.set_code(pb::ERROR_CODE_SESSION_BUSY);
  return MakeFrame(id, m);
}

class ConnectionStateTest : public ::testing::Test {
 protected:
  Verdict Ok(Direction dir, const Frame& f) {
    Verdict v = Verdict::kIgnore;
    Status s = conn_.Observe(dir, f, &v);
    EXPECT_TRUE(s.ok()) << DescribeFrame(f) << ": " << s.ToString();
    return v;
  }
  void Refused(Direction dir, const Frame& f, const std::string& why) {
    Verdict v;
    Status s = conn_.Observe(dir, f, &v);
    EXPECT_TRUE(s.IsInvalidArgument()) << DescribeFrame(f) << ": " << s.ToString();
    EXPECT_NE(std::string::npos, s.ToString().find(why)) << s.ToString();
  }
  void Handshake() {
    Ok(kA, testing::SampleHello());    // versions 1..1, window 32
    Ok(kS, testing::SampleWelcome());  // window 16
  }
  ConnectionState conn_;
};

TEST_F(ConnectionStateTest, RequiresHelloThenWelcome) {
  Refused(kA, Ping(), "before HELLO");
  Refused(kS, testing::SampleWelcome(), "before HELLO");
  Refused(kA, Begin(1), "before HELLO");
  Ok(kA, testing::SampleHello());
  Refused(kA, testing::SampleHello(), "second HELLO");
  Refused(kA, Begin(1), "before WELCOME");
  Refused(kA, testing::SampleWelcome(), "sent by the agent");
  Ok(kS, testing::SampleWelcome());
  EXPECT_TRUE(conn_.handshake_done());
  EXPECT_EQ(16u, conn_.window());
  EXPECT_EQ(1u, conn_.version());
  Refused(kS, testing::SampleWelcome(), "second WELCOME");
  Refused(kA, testing::SampleHello(), "second HELLO");
}

TEST_F(ConnectionStateTest, RejectsAWelcomeThatDoesNotMatchTheHello) {
  Ok(kA, testing::SampleHello());
  Frame w = testing::SampleWelcome();
  w.As<pb::Welcome>()->set_version(2);
  Refused(kS, w, "version outside");
  w = testing::SampleWelcome();
  w.As<pb::Welcome>()->set_window(33);
  Refused(kS, w, "window larger");
}

TEST_F(ConnectionStateTest, FatalErrorEndsEverything) {
  Ok(kA, testing::SampleHello());
  pb::Error e;
  e.set_code(pb::ERROR_CODE_VERSION_UNSUPPORTED);
  Ok(kS, MakeFrame(0, e));  // refusing the handshake
  EXPECT_TRUE(conn_.closed());
  Refused(kS, testing::SampleWelcome(), "connection closed");
}

TEST_F(ConnectionStateTest, RoutesSessionsAndUsesTheNegotiatedWindow) {
  Handshake();
  Ok(kA, Begin(1));
  Ok(kA, Begin(5));
  Refused(kA, Begin(3), "session id not new");
  Refused(kA, Begin(5), "session id not new");
  EXPECT_EQ(2u, conn_.open_sessions());
  Ok(kS, testing::SampleBeginSessionReply(1, pb::SYNC_KIND_UPDATE));
  for (uint64_t seq = 1; seq <= 16; ++seq) {
    Ok(kA, testing::SampleAction(1, seq, pb::ACTION_KIND_MARK_READ));
  }
  Refused(kA, testing::SampleAction(1, 17, pb::ACTION_KIND_MARK_READ), "more than W");
  // Session 5 is independent of session 1's full window.
  Ok(kS, testing::SampleBeginSessionReply(5, pb::SYNC_KIND_INITIAL));
  Ok(kA, testing::SampleAction(5, 1, pb::ACTION_KIND_UNMAP));
  EXPECT_EQ(16u, conn_.session(1)->in_flight(kA));
  EXPECT_EQ(1u, conn_.session(5)->in_flight(kA));
}

TEST_F(ConnectionStateTest, ClosedSessionsAreForgottenAndLateFramesDropped) {
  Handshake();
  Ok(kA, Begin(1));
  Ok(kS, SessionError(1));  // e.g. SESSION_BUSY
  EXPECT_EQ(0u, conn_.open_sessions());
  EXPECT_EQ(nullptr, conn_.session(1));
  EXPECT_EQ(Verdict::kIgnore, Ok(kA, testing::SampleAction(1, 1, pb::ACTION_KIND_TRASH)));
  Refused(kA, testing::SampleAction(2, 1, pb::ACTION_KIND_TRASH), "never opened");
  Refused(kA, Begin(1), "not new");
  Ok(kA, Begin(2));
}

TEST_F(ConnectionStateTest, ConnectionFramesAfterTheHandshake) {
  Handshake();
  Ok(kA, Ping());
  Ok(kS, MakeFrame(0, pb::Pong()));
  Ok(kS, testing::SampleFrames()[5]);  // SYNC_REQUEST
  Refused(kA, testing::SampleFrames()[5], "sent by the agent");
  Refused(kS, Begin(1), "sent by the server");
}

TEST_F(ConnectionStateTest, CarriesAWholeUpdateSyncAndForgetsTheSession) {
  Handshake();
  const uint32_t s = 7;
  pb::SwapRequest swap;
  swap.set_last_seq(1);
  pb::SyncComplete complete;
  complete.set_last_seq(1);
  Ok(kA, Begin(s));
  Ok(kS, testing::SampleBeginSessionReply(s, pb::SYNC_KIND_UPDATE));
  Ok(kA, testing::SampleAction(s, 1, pb::ACTION_KIND_DESTROY));
  Ok(kS, testing::SampleAck(s, 1, 1));
  Ok(kA, MakeFrame(s, swap));
  Ok(kS, testing::SampleAction(s, 1, pb::ACTION_KIND_INSERT, /*from_agent=*/false));
  Ok(kA, testing::SampleAck(s, 1, 1));
  Ok(kS, MakeFrame(s, complete));
  Ok(kA, testing::SampleEndSession(s, true));
  EXPECT_EQ(1u, conn_.open_sessions());
  Ok(kS, testing::SampleEndSession(s, false));
  EXPECT_EQ(0u, conn_.open_sessions());
}

TEST_F(ConnectionStateTest, LimitsOpenSessions) {
  Handshake();
  for (uint32_t id = 1; id <= kMaxOpenSessions; ++id) Ok(kA, Begin(id));
  Refused(kA, Begin(kMaxOpenSessions + 1), "more than kMaxOpenSessions");
}

}  // namespace
}  // namespace mobilesync::wire
