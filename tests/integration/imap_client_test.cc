// The agent's asynchronous IMAP client against a real Dovecot (the harness's
// throwaway instance): master-user login and every command the agent needs,
// including a 10 MB literal both ways, pipelining and METADATA.
#include "sync_agent/imap/imap_client.h"
#include "sync_agent/imap/uid_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "common/event_loop.h"
#include "harness/dovecot_instance.h"

namespace mobilesync::agent::imap {
namespace {

using std::chrono::milliseconds;
using testing::DovecotInstance;
using testing::DovecotOptions;

// Runs the loop until `cond` holds or the deadline passes.
bool RunUntil(event_base* base, const std::function<bool()>& cond,
              milliseconds timeout = milliseconds(30000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    timeval tv = {0, 20000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return true;
}

class ImapClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dovecot_ = new DovecotInstance();
    DovecotOptions o;
    o.users.push_back({"alice", "alice-pw", "userdb_mobilesync_enabled=yes"});
    o.users.push_back({"bob", "bob-pw", ""});
    o.load_mobilesync = false;
    o.mail_debug = false;
    o.wait_for_lmtp = false;
    Status s = dovecot_->Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() {
    delete dovecot_;
    dovecot_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(dovecot_ != nullptr && dovecot_->running());
    base_.reset(event_base_new());
  }

  std::unique_ptr<ImapClient> Connect(const std::string& user, bool tls = false) {
    ImapClientOptions o;
    o.host = "127.0.0.1";
    o.port = tls ? dovecot_->imaps_port() : dovecot_->imap_port();
    o.use_tls = tls;
    o.log_user = user;
    if (tls) {
      TlsClientOptions t;
      t.ca_file = dovecot_->ca_cert();
      EXPECT_TRUE(TlsClientContext::Create(t, &tls_).ok());
      o.tls = tls_.get();
    }
    auto c = std::make_unique<ImapClient>(base_.get(), o);
    bool done = false;
    Status st;
    c->Connect([&](const Status& s) {
      st = s;
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    EXPECT_TRUE(st.ok()) << st.ToString();
    done = false;
    CommandResult r;
    c->LoginAsMaster(user, "mobilesync-agent", "master-secret-pw", [&](const CommandResult& res) {
      r = res;
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    return c;
  }

  // Runs one command and returns its result.
  CommandResult Run(const std::function<void(ImapClient::Done)>& start) {
    bool done = false;
    CommandResult r;
    start([&](const CommandResult& res) {
      r = res;
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    return r;
  }

  static DovecotInstance* dovecot_;
  EventBasePtr base_;
  std::unique_ptr<TlsClientContext> tls_;
};
DovecotInstance* ImapClientTest::dovecot_ = nullptr;

std::string BigMessage(size_t bytes) {
  std::string m =
      "From: a@example.test\r\nTo: b@example.test\r\nSubject: big\r\n"
      "Message-ID: <big@example.test>\r\n\r\n";
  size_t line = 0;
  while (m.size() < bytes) {
    std::string l = "line " + std::to_string(line++) + " ";
    l.append(70 - l.size() % 70, static_cast<char>('a' + line % 26));
    m += l + "\r\n";
  }
  return m;
}

TEST_F(ImapClientTest, LogsInAsUserStarMasterAndSeesCapabilities) {
  auto c = Connect("alice");
  EXPECT_TRUE(c->HasCapability("LITERAL+"));
  EXPECT_TRUE(c->HasCapability("METADATA") || c->HasCapability("METADATA-SERVER"));
  CommandResult r = Run([&](auto done) { c->Capability(done); });
  EXPECT_TRUE(r.status.ok());
  EXPECT_TRUE(c->HasCapability("MOVE"));
  EXPECT_TRUE(c->HasCapability("CONDSTORE"));
}

TEST_F(ImapClientTest, WrongMasterPasswordIsRefused) {
  ImapClientOptions o;
  o.port = dovecot_->imap_port();
  ImapClient c(base_.get(), o);
  bool done = false;
  c.Connect([&](const Status&) { done = true; });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  CommandResult r = Run([&](auto d) { c.LoginAsMaster("alice", "mobilesync-agent", "wrong", d); });
  EXPECT_EQ(r.status.code(), Status::Code::kAborted) << r.status.ToString();
}

TEST_F(ImapClientTest, EveryCommandTheAgentNeeds) {
  auto c = Connect("alice");
  // LIST with special-use.
  std::vector<ListEntry> boxes;
  bool done = false;
  c->List([&](const CommandResult& r, std::vector<ListEntry>&& e) {
    EXPECT_TRUE(r.status.ok());
    boxes = std::move(e);
    done = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  bool trash = false;
  for (const auto& b : boxes) trash |= b.name == "Trash" && b.HasFlag("\\Trash");
  EXPECT_TRUE(trash) << boxes.size();

  // SELECT (CONDSTORE).
  MailboxInfo info;
  done = false;
  c->Select("INBOX", false, true, [&](const CommandResult& r, const MailboxInfo& i) {
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    info = i;
    done = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  EXPECT_NE(info.uidvalidity, 0u);
  EXPECT_NE(info.highestmodseq, 0u);

  // APPEND a small and a 10 MB message, pipelined.
  const std::string small = "Subject: small\r\n\r\nhello\r\n";
  const std::string big = BigMessage(10 << 20);
  AppendUid u1, u2;
  int appended = 0;
  c->Append("INBOX", "(\\Flagged)", "21-Nov-2026 10:00:00 +0000", small,
            [&](const CommandResult& r, const AppendUid& u) {
              EXPECT_TRUE(r.status.ok()) << r.status.ToString();
              u1 = u;
              ++appended;
            });
  c->Append("INBOX", "", "", big, [&](const CommandResult& r, const AppendUid& u) {
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    u2 = u;
    ++appended;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return appended == 2; }));
  EXPECT_EQ(u1.uidvalidity, info.uidvalidity);
  EXPECT_NE(u1.uid, 0u);
  EXPECT_EQ(u2.uid, u1.uid + 1);

  // UID FETCH everything back, byte-equal.
  std::map<uint64_t, FetchedMessage> got;
  CommandResult r = Run([&](auto d) {
    c->UidFetch(
        UidSet({u1.uid, u2.uid}), "(FLAGS INTERNALDATE RFC822.SIZE X-GUID MODSEQ BODY.PEEK[])",
        [&](FetchedMessage&& m) { got[m.uid] = std::move(m); }, d);
  });
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[u1.uid].body, small);
  EXPECT_EQ(got[u1.uid].size, small.size());
  EXPECT_EQ(got[u1.uid].internaldate, "21-Nov-2026 10:00:00 +0000");
  EXPECT_NE(std::find(got[u1.uid].flags.begin(), got[u1.uid].flags.end(), "\\Flagged"),
            got[u1.uid].flags.end());
  EXPECT_FALSE(got[u1.uid].guid.empty());
  EXPECT_NE(got[u1.uid].modseq, 0u);
  ASSERT_EQ(got[u2.uid].body.size(), big.size());
  EXPECT_TRUE(got[u2.uid].body == big);

  // UID STORE, then check the flag.
  r = Run([&](auto d) { c->UidStore(std::to_string(u1.uid), "+FLAGS.SILENT", "\\Seen", d); });
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  got.clear();
  r = Run([&](auto d) {
    c->UidFetch(
        std::to_string(u1.uid), "(FLAGS)", [&](FetchedMessage&& m) { got[m.uid] = std::move(m); },
        d);
  });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(std::find(got[u1.uid].flags.begin(), got[u1.uid].flags.end(), "\\Seen"),
            got[u1.uid].flags.end());

  // UID MOVE to Trash, then UID EXPUNGE there.
  r = Run([&](auto d) { c->UidMove(std::to_string(u2.uid), "Trash", d); });
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  done = false;
  c->Select("Trash", false, false, [&](const CommandResult& res, const MailboxInfo& i) {
    EXPECT_TRUE(res.status.ok());
    EXPECT_EQ(i.exists, 1u);
    info = i;
    done = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  r = Run([&](auto d) { c->UidStore("1:*", "+FLAGS.SILENT", "\\Deleted", d); });
  EXPECT_TRUE(r.status.ok());
  r = Run([&](auto d) { c->UidExpunge("1:*", d); });
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  r = Run([&](auto d) { c->Noop(d); });
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(c->mailbox().exists, 0u);

  // EXAMINE is read-only.
  done = false;
  c->Select("INBOX", true, true, [&](const CommandResult& res, const MailboxInfo& i) {
    EXPECT_TRUE(res.status.ok());
    EXPECT_TRUE(i.read_only);
    done = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));

  // IDLE, woken by nothing: end it ourselves.
  bool idle_done = false;
  c->Idle([](const ImapResponse&) {},
          [&](const CommandResult& res) {
            EXPECT_TRUE(res.status.ok()) << res.status.ToString();
            idle_done = true;
          });
  c->IdleDone();
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return idle_done; }));

  r = Run([&](auto d) { c->Logout(d); });
  EXPECT_TRUE(r.status.ok());
}

TEST_F(ImapClientTest, MetadataRoundTrip) {
  auto c = Connect("alice");
  const std::string root = "/private/vendor/vendor.mobilesync/action";
  MetadataMap set = {{root + "/0001", "insert INBOX 1 1"},
                     {root + "/0002", std::string("multi\r\nline value")},
                     {root + "/0003", "mark-read INBOX 1 1"}};
  CommandResult r = Run([&](auto d) { c->SetMetadata("", set, d); });
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  MetadataMap got;
  bool done = false;
  c->GetMetadata("", {root}, true, [&](const CommandResult& res, MetadataMap&& m) {
    EXPECT_TRUE(res.status.ok()) << res.status.ToString();
    got = std::move(m);
    done = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(got[root + "/0002"], std::optional<std::string>("multi\r\nline value"));
  // Delete one (NIL) and read a single entry.
  r = Run([&](auto d) { c->SetMetadata("", {{root + "/0002", std::nullopt}}, d); });
  ASSERT_TRUE(r.status.ok());
  done = false;
  c->GetMetadata("", {root + "/0002", root + "/0001"}, false,
                 [&](const CommandResult& res, MetadataMap&& m) {
                   EXPECT_TRUE(res.status.ok());
                   got = std::move(m);
                   done = true;
                 });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  EXPECT_FALSE(got[root + "/0002"].has_value());
  EXPECT_EQ(got[root + "/0001"], std::optional<std::string>("insert INBOX 1 1"));
}

TEST_F(ImapClientTest, PipelinesManyCommandsEachAnsweredOnce) {
  auto c = Connect("bob");
  std::vector<int> answers(200, 0);
  for (int i = 0; i < 200; ++i) {
    c->Noop([&answers, i](const CommandResult& r) {
      EXPECT_TRUE(r.status.ok());
      ++answers[i];
    });
  }
  EXPECT_LE(c->in_flight(), 16u);
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return answers[199] == 1; }));
  for (int n : answers) EXPECT_EQ(n, 1);
}

// Dovecot runs pipelined FETCH commands in parallel, so their untagged
// answers interleave and name no command: each UID FETCH gets the messages
// of its own UID set, every one of them, and no other.
TEST_F(ImapClientTest, PipelinedFetchesEachGetTheirOwnMessages) {
  auto c = Connect("bob");
  ASSERT_TRUE(Run([&](auto d) { c->Command("CREATE Pipe", d); }).status.ok());
  std::vector<uint64_t> uids;
  for (int i = 0; i < 12; ++i) {
    const std::string body =
        "Subject: m" + std::to_string(i) + "\r\n\r\n" + std::string(2000 + i * 3000, 'x') + "\r\n";
    uint64_t uid = 0;
    bool done = false;
    c->Append("Pipe", "", "", body, [&](const CommandResult& r, const AppendUid& u) {
      EXPECT_TRUE(r.status.ok()) << r.status.ToString();
      uid = u.uid;
      done = true;
    });
    ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    uids.push_back(uid);
  }
  bool selected = false;
  c->Select("Pipe", false, false, [&](const CommandResult& r, const MailboxInfo&) {
    EXPECT_TRUE(r.status.ok());
    selected = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return selected; }));
  for (int round = 0; round < 5; ++round) {
    // One command for the first six, then one per message, all pipelined.
    std::vector<std::vector<uint64_t>> sets = {{uids.begin(), uids.begin() + 6}};
    for (size_t i = 6; i < uids.size(); ++i) sets.push_back({uids[i]});
    std::vector<std::vector<uint64_t>> got(sets.size());
    size_t finished = 0;
    for (size_t k = 0; k < sets.size(); ++k) {
      c->UidFetch(
          UidSet(sets[k]), "(UID BODY.PEEK[])",
          [&got, k](FetchedMessage&& m) { got[k].push_back(m.uid); },
          [&finished](const CommandResult& r) {
            EXPECT_TRUE(r.status.ok()) << r.status.ToString();
            ++finished;
          });
    }
    ASSERT_TRUE(RunUntil(base_.get(), [&] { return finished == sets.size(); }));
    for (size_t k = 0; k < sets.size(); ++k) {
      std::sort(got[k].begin(), got[k].end());
      EXPECT_EQ(got[k], sets[k]) << "round " << round << ", command " << k;
    }
  }
}

TEST_F(ImapClientTest, CloseCancelsEveryCommandExactlyOnce) {
  auto c = Connect("bob");
  int cancelled = 0, other = 0;
  for (int i = 0; i < 40; ++i) {
    c->Noop([&](const CommandResult& r) {
      if (r.status.IsUnavailable())
        ++cancelled;
      else
        ++other;
    });
  }
  c->Close(Status::Unavailable("test closes"));
  EXPECT_EQ(cancelled + other, 40);
  EXPECT_EQ(cancelled, 40);
  // Commands on a closed client are answered too (from the loop).
  bool answered = false;
  c->Noop([&](const CommandResult& r) { answered = r.status.IsUnavailable(); });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return answered; }));
}

TEST_F(ImapClientTest, CallbackMayDestroyTheClient) {
  auto c = Connect("bob");
  int answers = 0;
  c->Noop([&](const CommandResult&) {
    ++answers;
    c.reset();  // the owner drops the client from inside its callback
  });
  c->Noop([&](const CommandResult& r) {
    ++answers;
    EXPECT_TRUE(r.status.IsUnavailable());
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return answers == 2; }));
}

TEST_F(ImapClientTest, WorksOverTls) {
  auto c = Connect("alice", /*tls=*/true);
  CommandResult r = Run([&](auto d) { c->Noop(d); });
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
}

TEST_F(ImapClientTest, ServerDisconnectFailsInFlightCommands) {
  auto c = Connect("bob");
  Status closed;
  bool close_seen = false;
  c->set_on_close([&](const Status& s) {
    closed = s;
    close_seen = true;
  });
  // LOGOUT then a NOOP that the server will never answer.
  int answered = 0;
  c->Logout([&](const CommandResult&) { ++answered; });
  c->Noop([&](const CommandResult& r) {
    EXPECT_FALSE(r.status.ok());
    ++answered;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return answered == 2 && close_seen; }));
}

}  // namespace
}  // namespace mobilesync::agent::imap
