// Protocol conformance from the server side: a scripted agent over real TLS
// against a running mobilesync-server. Every message type, acks, nacks,
// duplicate sequence numbers, window overflow and GC, per-agent user
// isolation, the per-user session lock, SYNC_REQUEST over the live
// connection, and kill -9 of the server in the middle of a batch.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "integration/server_fixture.h"
#include "sync_server/store/sqlite_store.h"
#include "wire/message_validator.h"

namespace mobilesync::testing {
namespace {

namespace pb = wire::pb;
using Json = nlohmann::json;
using wire::Frame;

class ProtocolTest : public ::testing::Test {
 protected:
  void Start(ServerOptions o = {}) { ASSERT_TRUE(fx_.Start(o).ok()) << fx_.ServerLog(); }

  // A connected, authenticated agent (by token).
  std::unique_ptr<TlsProtocolClient> Agent(const std::string& token = kAgentToken) {
    auto c = std::make_unique<TlsProtocolClient>();
    Status s = c->Connect(fx_.agent_port(), fx_.ca_cert());
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = c->Hello(token);
    EXPECT_TRUE(s.ok()) << s.ToString() << fx_.ServerLog();
    return c;
  }

  Frame Next(TlsProtocolClient* c) {
    Frame f;
    Status s = c->Read(&f);
    EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << fx_.ServerLog();
    return f;
  }

  template <typename T>
  T Expect(TlsProtocolClient* c, uint32_t session) {
    Frame f = Next(c);
    EXPECT_EQ(f.session_id, session) << wire::DescribeFrame(f);
    const T* m = f.As<T>();
    EXPECT_NE(m, nullptr) << "got " << wire::DescribeFrame(f);
    // What the agent would refuse, the server must never send.
    Status valid = wire::ValidateFrame(f);
    EXPECT_TRUE(valid.ok()) << valid.ToString() << ": " << wire::DescribeFrame(f);
    return m ? *m : T();
  }

  // One page of an initial sync's list.
  pb::List ListPage(TlsProtocolClient* c, uint32_t session, uint32_t offset, uint32_t limit) {
    pb::ListRequest req;
    req.set_offset(offset);
    req.set_limit(limit);
    EXPECT_TRUE(c->Send(wire::MakeFrame(session, req)).ok());
    return Expect<pb::List>(c, session);
  }

  pb::BeginSessionReply Begin(TlsProtocolClient* c, uint32_t session, const std::string& user,
                              uint64_t generation) {
    EXPECT_TRUE(c->Send(BeginSession(session, user, generation)).ok());
    return Expect<pb::BeginSessionReply>(c, session);
  }

  // Sends an insert and returns the id in its ACK.
  std::string Insert(TlsProtocolClient* c, uint32_t session, uint64_t seq, const std::string& key,
                     int64_t date) {
    EXPECT_TRUE(c->Send(InsertAction(session, seq, key, date, "subject " + key)).ok());
    pb::Ack ack = Expect<pb::Ack>(c, session);
    EXPECT_EQ(ack.first_seq(), seq);
    EXPECT_EQ(ack.last_seq(), seq);
    EXPECT_EQ(ack.assigned_size(), 1);
    return ack.assigned_size() == 1 ? ack.assigned(0).remote_id() : "";
  }

  uint64_t End(TlsProtocolClient* c, uint32_t session) {
    EXPECT_TRUE(c->Send(EndSessionOk(session)).ok());
    pb::EndSession e = Expect<pb::EndSession>(c, session);
    EXPECT_EQ(e.outcome(), pb::SESSION_OUTCOME_OK);
    return e.new_generation();
  }

  pb::List List(TlsProtocolClient* c, uint32_t session) {
    pb::ListRequest r;
    r.set_offset(0);
    r.set_limit(1000);
    EXPECT_TRUE(c->Send(wire::MakeFrame(session, r)).ok());
    return Expect<pb::List>(c, session);
  }

  // An initial sync that only commits; returns the generation.
  uint64_t InitialSync(TlsProtocolClient* c, uint32_t session) {
    pb::BeginSessionReply r = Begin(c, session, "alice", 0);
    EXPECT_EQ(r.kind(), pb::SYNC_KIND_INITIAL);
    return End(c, session);
  }

  uint64_t Pending() {
    server::HttpResponse r;
    EXPECT_TRUE(fx_.Api("GET", "/v1/status", "", &r).ok());
    return Json::parse(r.body).value("pending_actions", 9999ull);
  }

  ServerFixture fx_;
};

TEST_F(ProtocolTest, HandshakeByTokenOrCertificatePingAndRefusals) {
  Start();
  TlsProtocolClient a;
  ASSERT_TRUE(a.Connect(fx_.agent_port(), fx_.ca_cert()).ok());
  Frame welcome;
  ASSERT_TRUE(a.Hello(kAgentToken, 8, &welcome).ok());
  EXPECT_EQ(welcome.As<pb::Welcome>()->version(), 1u);
  EXPECT_EQ(welcome.As<pb::Welcome>()->window(), 8u);
  pb::Ping ping;
  ping.set_nonce(77);
  ASSERT_TRUE(a.Send(wire::MakeFrame(0, ping)).ok());
  EXPECT_EQ(Expect<pb::Pong>(&a, 0).nonce(), 77u);

  // By client certificate alone.
  TlsProtocolClient b;
  ASSERT_TRUE(b.Connect(fx_.agent_port(), fx_.ca_cert(), fx_.agent_cert()).ok());
  EXPECT_TRUE(b.Hello("").ok()) << fx_.ServerLog();

  // A wrong token: ERROR(AUTHENTICATION), then the server closes.
  TlsProtocolClient c;
  ASSERT_TRUE(c.Connect(fx_.agent_port(), fx_.ca_cert()).ok());
  Frame f;
  EXPECT_FALSE(c.Hello("wrong-token", 8, &f).ok());
  ASSERT_NE(f.As<pb::Error>(), nullptr);
  EXPECT_EQ(f.As<pb::Error>()->code(), pb::ERROR_CODE_AUTHENTICATION);
  EXPECT_TRUE(c.Read(&f).IsUnavailable());
  EXPECT_TRUE(fx_.WaitForLog("authentication failed"));
  EXPECT_EQ(fx_.ServerLog().find("wrong-token"), std::string::npos);

  // A certificate from another CA fails the TLS handshake itself.
  TlsProtocolClient d;
  Status s = d.Connect(fx_.agent_port(), fx_.ca_cert(), fx_.stranger_cert());
  if (s.ok()) s = d.Hello("");  // TLS 1.3 reports the failure on first read
  EXPECT_FALSE(s.ok());

  // Anything before HELLO is a protocol error.
  TlsProtocolClient e;
  ASSERT_TRUE(e.Connect(fx_.agent_port(), fx_.ca_cert()).ok());
  ASSERT_TRUE(e.Send(BeginSession(1, "alice", 0)).ok());
  EXPECT_EQ(Expect<pb::Error>(&e, 0).code(), pb::ERROR_CODE_PROTOCOL);
}

TEST_F(ProtocolTest, InitialSyncListsFetchesInsertsOnceAndCommits) {
  Start();
  uint64_t a = fx_.Inject("phone-one", 1000);
  uint64_t b = fx_.Inject("phone-two", 2000);
  auto agent = Agent();
  pb::BeginSessionReply r = Begin(agent.get(), 1, "alice", 0);
  EXPECT_EQ(r.kind(), pb::SYNC_KIND_INITIAL);
  EXPECT_EQ(r.server_generation(), 0u);
  EXPECT_EQ(r.window_size(), 6u);
  EXPECT_EQ(r.message_count(), 2u);

  pb::List list = List(agent.get(), 1);
  ASSERT_EQ(list.entries_size(), 2);
  EXPECT_EQ(list.total(), 2u);
  EXPECT_EQ(list.entries(0).remote_id(), std::to_string(b));
  EXPECT_EQ(list.entries(1).remote_id(), std::to_string(a));
  EXPECT_EQ(list.entries(0).message_id(), "<phone-two@example.net>");
  EXPECT_EQ(list.entries(0).state(), pb::MESSAGE_STATE_UNREAD);

  pb::Fetch fetch;
  fetch.set_request_id(1);
  fetch.set_remote_id(std::to_string(a));
  ASSERT_TRUE(agent->Send(wire::MakeFrame(1, fetch)).ok());
  fetch.set_request_id(2);
  fetch.set_remote_id("424242");
  ASSERT_TRUE(agent->Send(wire::MakeFrame(1, fetch)).ok());
  Frame f = Next(agent.get());
  ASSERT_NE(f.As<pb::MessageBody>(), nullptr);
  EXPECT_EQ(f.As<pb::MessageBody>()->result(), pb::FETCH_RESULT_OK);
  EXPECT_EQ(f.As<pb::MessageBody>()->date(), 1000);
  EXPECT_NE(f.body.find("Body of phone-one"), std::string::npos);
  f = Next(agent.get());
  ASSERT_NE(f.As<pb::MessageBody>(), nullptr);
  EXPECT_EQ(f.As<pb::MessageBody>()->request_id(), 2u);
  EXPECT_EQ(f.As<pb::MessageBody>()->result(), pb::FETCH_RESULT_NOT_FOUND);
  EXPECT_TRUE(f.body.empty());

  // Pull: insert a local message; a re-sent seq gets the same ACK and is
  // not applied again; the same insert key under a new seq neither.
  std::string id = Insert(agent.get(), 1, 1, "local-1", 3000);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(agent->Send(InsertAction(1, 1, "local-1", 3000, "again")).ok());
  pb::Ack dup = Expect<pb::Ack>(agent.get(), 1);
  EXPECT_EQ(dup.first_seq(), 1u);
  ASSERT_EQ(dup.assigned_size(), 1);
  EXPECT_EQ(dup.assigned(0).remote_id(), id);
  EXPECT_EQ(Insert(agent.get(), 1, 2, "local-1", 3000), id);
  EXPECT_EQ(List(agent.get(), 1).total(), 3u);

  uint64_t generation = End(agent.get(), 1);
  EXPECT_NE(generation, 0u);
  // The inserts the list comparison covered no longer travel.
  EXPECT_EQ(Pending(), 0u);
  // The same generation next time is an update sync.
  r = Begin(agent.get(), 2, "alice", generation);
  EXPECT_EQ(r.kind(), pb::SYNC_KIND_UPDATE);
  EXPECT_EQ(r.server_generation(), generation);
  EXPECT_EQ(r.message_count(), 3u);
}

// The device destroyed messages while the agent's next session is an
// initial sync (its END_SESSION reply was lost, say): the list names them,
// paged from the same offset as the entries, and keeps naming them until
// the initial sync commits (which drops the action list).
TEST_F(ProtocolTest, InitialSyncListNamesPendingDestroysPagedWithTheEntries) {
  Start();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(fx_.Inject("m" + std::to_string(i), 1000 + i));
  auto agent = Agent();
  uint64_t gen = InitialSync(agent.get(), 1);
  ASSERT_NE(gen, 0u);
  server::HttpResponse h;
  for (int i : {0, 1, 3}) {
    ASSERT_TRUE(
        fx_.Api("POST", "/v1/messages/" + std::to_string(ids[i]) + "/destroy", "", &h).ok());
    ASSERT_EQ(h.status, 200) << h.body;
    (void)Expect<pb::SyncRequest>(agent.get(), 0);
  }
  ASSERT_TRUE(fx_.Api("POST", "/v1/messages/" + std::to_string(ids[2]) + "/read", "", &h).ok());
  (void)Expect<pb::SyncRequest>(agent.get(), 0);
  EXPECT_GE(Pending(), 3u);

  // Not the server's generation: an initial sync. Pages of 1 entry: three
  // of them, as many as the longer of the two lists.
  pb::BeginSessionReply r = Begin(agent.get(), 2, "alice", gen + 1);
  ASSERT_EQ(r.kind(), pb::SYNC_KIND_INITIAL);
  std::vector<std::string> entries, destroyed;
  for (uint32_t offset = 0; offset < 3; ++offset) {
    pb::List page = ListPage(agent.get(), 2, offset, 1);
    EXPECT_EQ(page.offset(), offset);
    EXPECT_EQ(page.total(), 2u);
    EXPECT_EQ(page.destroyed_total(), 3u);
    EXPECT_LE(page.destroyed_ids_size(), 1);
    for (const auto& e : page.entries()) entries.push_back(e.remote_id());
    for (const auto& d : page.destroyed_ids()) destroyed.push_back(d);
  }
  EXPECT_EQ(entries.size(), 2u);
  EXPECT_EQ(destroyed, (std::vector<std::string>{std::to_string(ids[0]), std::to_string(ids[1]),
                                                 std::to_string(ids[3])}));
  uint64_t gen2 = End(agent.get(), 2);
  EXPECT_NE(gen2, 0u);
  EXPECT_EQ(Pending(), 0u) << "the initial sync's commit drops the action list";
}

// An initial sync over a window of several pages with no destroy pending
// (a resync, or the session after a lost END_SESSION reply): every page
// after the first is past the end of the (empty) destroyed list, and valid.
TEST_F(ProtocolTest, InitialSyncListOfSeveralPagesWithNoDestroyPending) {
  Start();
  for (int i = 0; i < 3; ++i) fx_.Inject("p" + std::to_string(i), 1000 + i);
  auto agent = Agent();
  uint64_t gen = InitialSync(agent.get(), 1);
  ASSERT_NE(gen, 0u);
  pb::BeginSessionReply r = Begin(agent.get(), 2, "alice", gen + 1);
  ASSERT_EQ(r.kind(), pb::SYNC_KIND_INITIAL);
  size_t entries = 0;
  for (uint32_t offset = 0; offset < 3; ++offset) {
    pb::List page = ListPage(agent.get(), 2, offset, 1);
    EXPECT_EQ(page.total(), 3u);
    EXPECT_EQ(page.destroyed_total(), 0u);
    entries += static_cast<size_t>(page.entries_size());
  }
  EXPECT_EQ(entries, 3u);
  EXPECT_NE(End(agent.get(), 2), 0u);
}

TEST_F(ProtocolTest, UpdateSyncAcksNacksSwapsAndReplaysTheServerList) {
  Start();
  uint64_t a = fx_.Inject("a", 1000);
  uint64_t b = fx_.Inject("b", 2000);
  auto agent = Agent();
  uint64_t gen = InitialSync(agent.get(), 1);
  // Changes on the device since: read a, compose via sync.
  server::HttpResponse h;
  ASSERT_TRUE(fx_.Api("POST", "/v1/messages/" + std::to_string(a) + "/read", "", &h).ok());
  // The live connection hears about it at once.
  pb::SyncRequest req = Expect<pb::SyncRequest>(agent.get(), 0);
  EXPECT_EQ(req.user(), "alice");
  EXPECT_EQ(req.reason(), pb::SYNC_REASON_REMOTE_CHANGE);
  ASSERT_TRUE(fx_.Api("POST", "/v1/compose",
                      R"({"to":"x@example.org","subject":"queued","body":"hi","via_sync":true})",
                      &h)
                  .ok());
  ASSERT_EQ(h.status, 202);
  EXPECT_EQ(Expect<pb::SyncRequest>(agent.get(), 0).reason(), pb::SYNC_REASON_OUTBOX);
  EXPECT_EQ(Pending(), 2u);

  pb::BeginSessionReply r = Begin(agent.get(), 2, "alice", gen);
  ASSERT_EQ(r.kind(), pb::SYNC_KIND_UPDATE);
  // An action on an id this server never gave out: NACK, permanent.
  ASSERT_TRUE(agent->Send(StateAction(2, 1, pb::ACTION_KIND_MARK_READ, "424242")).ok());
  pb::Nack nack = Expect<pb::Nack>(agent.get(), 2);
  EXPECT_EQ(nack.seq(), 1u);
  EXPECT_EQ(nack.reason(), pb::NACK_REASON_UNKNOWN_REMOTE_ID);
  ASSERT_TRUE(agent->Send(StateAction(2, 2, pb::ACTION_KIND_TRASH, std::to_string(b))).ok());
  EXPECT_EQ(Expect<pb::Ack>(agent.get(), 2).last_seq(), 2u);
  // Re-sent after a lost ack: acknowledged again, applied once.
  ASSERT_TRUE(agent->Send(StateAction(2, 2, pb::ACTION_KIND_TRASH, std::to_string(b))).ok());
  EXPECT_EQ(Expect<pb::Ack>(agent.get(), 2).last_seq(), 2u);

  pb::SwapRequest swap;
  swap.set_last_seq(2);
  ASSERT_TRUE(agent->Send(wire::MakeFrame(2, swap)).ok());
  // The server's list, in the device's order, each acked by the agent.
  Frame f = Next(agent.get());
  ASSERT_NE(f.As<pb::Action>(), nullptr) << wire::DescribeFrame(f);
  EXPECT_EQ(f.As<pb::Action>()->seq(), 1u);
  EXPECT_EQ(f.As<pb::Action>()->kind(), pb::ACTION_KIND_MARK_READ);
  EXPECT_EQ(f.As<pb::Action>()->remote_id(), std::to_string(a));
  f = Next(agent.get());
  ASSERT_NE(f.As<pb::Action>(), nullptr) << wire::DescribeFrame(f);
  EXPECT_EQ(f.As<pb::Action>()->seq(), 2u);
  EXPECT_EQ(f.As<pb::Action>()->kind(), pb::ACTION_KIND_DELIVER);
  EXPECT_NE(f.body.find("Subject: queued"), std::string::npos);
  // Acknowledge the first only: SYNC_COMPLETE waits for the second.
  ASSERT_TRUE(agent->Send(AckFrame(2, 1)).ok());
  Frame none;
  EXPECT_TRUE(agent->Read(&none, milliseconds(300)).IsTimeout());
  ASSERT_TRUE(agent->Send(AckFrame(2, 2)).ok());
  pb::SyncComplete done = Expect<pb::SyncComplete>(agent.get(), 2);
  EXPECT_EQ(done.last_seq(), 2u);
  EXPECT_EQ(done.free_slots(), 4u);
  // Every committed session moves the generation (a restored backup of the
  // store is then noticed).
  const uint64_t next = End(agent.get(), 2);
  EXPECT_NE(next, 0u);
  EXPECT_NE(next, gen);
  EXPECT_EQ(Pending(), 0u);
  ASSERT_TRUE(fx_.Api("GET", "/v1/messages/" + std::to_string(b), "", &h).ok());
  EXPECT_EQ(Json::parse(h.body)["state"], "trash");
}

TEST_F(ProtocolTest, WindowOverflowIsCollectedAndUnmapped) {
  ServerOptions o;
  o.alice_window = 3;
  Start(o);
  auto agent = Agent();
  Begin(agent.get(), 1, "alice", 0);
  std::vector<std::string> ids;
  for (int i = 1; i <= 4; ++i)
    ids.push_back(Insert(agent.get(), 1, i, "k" + std::to_string(i), i * 100));
  pb::List list = List(agent.get(), 1);
  ASSERT_EQ(list.total(), 3u);
  for (const auto& e : list.entries()) EXPECT_NE(e.remote_id(), ids[0]);
  uint64_t gen = End(agent.get(), 1);
  // The oldest left the window during the session: an UNMAP waits for the
  // agent (its copy stays on the organisation's side).
  EXPECT_EQ(Pending(), 1u);
  Begin(agent.get(), 2, "alice", gen);
  pb::SwapRequest swap;
  ASSERT_TRUE(agent->Send(wire::MakeFrame(2, swap)).ok());
  Frame f = Next(agent.get());
  ASSERT_NE(f.As<pb::Action>(), nullptr) << wire::DescribeFrame(f);
  EXPECT_EQ(f.As<pb::Action>()->kind(), pb::ACTION_KIND_UNMAP);
  EXPECT_EQ(f.As<pb::Action>()->remote_id(), ids[0]);
  ASSERT_TRUE(agent->Send(AckFrame(2, 1)).ok());
  EXPECT_EQ(Expect<pb::SyncComplete>(agent.get(), 2).free_slots(), 0u);
  End(agent.get(), 2);
  EXPECT_TRUE(fx_.WaitForLog("user=alice"));
}

TEST_F(ProtocolTest, AgentIsRefusedUsersItWasNotGivenAndItIsLogged) {
  Start();
  auto corp = Agent();
  ASSERT_TRUE(corp->Send(BeginSession(5, "bob", 0)).ok());
  pb::Error e = Expect<pb::Error>(corp.get(), 5);
  EXPECT_EQ(e.code(), pb::ERROR_CODE_USER_NOT_PERMITTED);
  EXPECT_TRUE(fx_.WaitForLog("user=bob: agent corp@"));
  EXPECT_NE(fx_.ServerLog().find("not provisioned for this user"), std::string::npos);
  // The connection stays usable for its own users.
  EXPECT_EQ(Begin(corp.get(), 6, "alice", 0).kind(), pb::SYNC_KIND_INITIAL);

  TlsProtocolClient cert;
  ASSERT_TRUE(cert.Connect(fx_.agent_port(), fx_.ca_cert(), fx_.agent_cert()).ok());
  ASSERT_TRUE(cert.Hello("").ok());
  ASSERT_TRUE(cert.Send(BeginSession(1, "carol", 0)).ok());
  EXPECT_EQ(Expect<pb::Error>(&cert, 1).code(), pb::ERROR_CODE_USER_NOT_PERMITTED);
}

TEST_F(ProtocolTest, OneSessionPerUserAcrossConnections) {
  Start();
  auto first = Agent();
  auto second = Agent();
  Begin(first.get(), 1, "alice", 0);
  ASSERT_TRUE(second->Send(BeginSession(1, "alice", 0)).ok());
  EXPECT_EQ(Expect<pb::Error>(second.get(), 1).code(), pb::ERROR_CODE_SESSION_BUSY);
  End(first.get(), 1);
  EXPECT_EQ(Begin(second.get(), 2, "alice", 0).kind(), pb::SYNC_KIND_INITIAL);
  // A dropped connection releases its lock.
  second->Close();
  ASSERT_TRUE(WaitFor([&] {
    auto third = Agent();
    if (!third->Send(BeginSession(1, "alice", 0)).ok()) return false;
    Frame f;
    return third->Read(&f).ok() && f.As<pb::BeginSessionReply>() != nullptr;
  }));
}

TEST_F(ProtocolTest, SyncNowGoesOverTheLiveConnection) {
  Start();
  auto agent = Agent();
  server::HttpResponse h;
  ASSERT_TRUE(fx_.Api("POST", "/v1/sync-now", "", &h).ok());
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(Json::parse(h.body)["via"], "connection");
  pb::SyncRequest r = Expect<pb::SyncRequest>(agent.get(), 0);
  EXPECT_EQ(r.user(), "alice");
  EXPECT_EQ(r.reason(), pb::SYNC_REASON_OPERATOR);
  EXPECT_TRUE(fx_.SinkMessages().empty());  // no trigger mail
  ASSERT_TRUE(fx_.Api("GET", "/v1/status", "", &h).ok());
  EXPECT_TRUE(Json::parse(h.body)["agent_connected"].get<bool>());
}

TEST_F(ProtocolTest, ViolationsGetErrorProtocol) {
  Start();
  auto agent = Agent();
  Begin(agent.get(), 1, "alice", 0);
  // A sequence gap.
  ASSERT_TRUE(agent->Send(InsertAction(1, 5, "gap", 100, "gap")).ok());
  EXPECT_EQ(Expect<pb::Error>(agent.get(), 1).code(), pb::ERROR_CODE_PROTOCOL);
  // A SWAP in an initial sync.
  Begin(agent.get(), 2, "alice", 0);
  pb::SwapRequest swap;
  ASSERT_TRUE(agent->Send(wire::MakeFrame(2, swap)).ok());
  EXPECT_EQ(Expect<pb::Error>(agent.get(), 2).code(), pb::ERROR_CODE_PROTOCOL);
  // Bytes that are no frame at all end the connection.
  ASSERT_TRUE(agent->SendRaw(std::string(16, '\xff')).ok());
  EXPECT_EQ(Expect<pb::Error>(agent.get(), 0).code(), pb::ERROR_CODE_PROTOCOL);
  Frame f;
  EXPECT_TRUE(agent->Read(&f).IsUnavailable());
}

TEST_F(ProtocolTest, KillNineMidBatchThenResendAppliesEachInsertOnce) {
  ServerOptions o;
  o.alice_window = 100;
  Start(o);
  std::map<int, std::string> acked;
  {
    auto agent = Agent();
    Begin(agent.get(), 1, "alice", 0);
    // A full window of inserts in flight; read a few acks; kill -9.
    for (int i = 1; i <= 8; ++i) {
      ASSERT_TRUE(
          agent->Send(InsertAction(1, i, "batch-" + std::to_string(i), 1000 + i, "b")).ok());
    }
    for (int i = 1; i <= 3; ++i) {
      pb::Ack ack = Expect<pb::Ack>(agent.get(), 1);
      ASSERT_EQ(ack.assigned_size(), 1);
      acked[static_cast<int>(ack.first_seq())] = ack.assigned(0).remote_id();
    }
    fx_.Kill();
  }
  // The store is consistent on disk before the server even restarts.
  {
    std::unique_ptr<server::SqliteStore> store;
    ASSERT_TRUE(server::SqliteStore::Open(fx_.database(), &store).ok());
    Status s = store->Check();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_TRUE(fx_.StartServer().ok()) << fx_.ServerLog();
  auto agent = Agent();
  Begin(agent.get(), 1, "alice", 0);
  std::set<std::string> ids;
  for (int i = 1; i <= 8; ++i) {
    std::string id = Insert(agent.get(), 1, i, "batch-" + std::to_string(i), 1000 + i);
    if (acked.count(i)) {
      EXPECT_EQ(id, acked[i]) << i;
    }
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_EQ(List(agent.get(), 1).total(), 8u);
  EXPECT_NE(End(agent.get(), 1), 0u);
}

}  // namespace
}  // namespace mobilesync::testing
