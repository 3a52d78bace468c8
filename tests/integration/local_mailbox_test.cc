// LocalMailbox and MailSubmitter against a real Dovecot (the harness's
// throwaway instance with the freshly built plugin): snapshots built from
// action entries the plugin recorded for real IMAP/LMTP changes and from
// entries written with SETMETADATA, every kind of Apply, idempotency, the
// id map's move with a message, and submission through a sendmail stand-in
// and through a real SMTP server (aiosmtpd).
#include "sync_agent/local_mailbox.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <memory>

#include "common/event_loop.h"
#include "harness/dovecot_instance.h"
#include "harness/metadata.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "plugin/action_record.h"
#include "sync_agent/cache_file.h"
#include "sync_agent/id_map_cache.h"
#include "sync_agent/listing_cache.h"
#include "sync_agent/mail_submitter.h"

namespace mobilesync::agent {
namespace {

using engine::ActionKind;
using engine::LocalId;
using engine::MessageState;
using engine::Op;
using engine::OpKind;
using std::chrono::milliseconds;
using testing::DovecotInstance;
using testing::DovecotOptions;
using testing::ImapTestClient;
using testing::MakeTestMessage;
using testing::TempDir;

const char kRoot[] = "/private/vendor/vendor.mobilesync";

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

struct Loaded {
  Status status;
  engine::AgentSnapshot snap;
  SnapshotInfo info;
};

struct Applied {
  Status status;
  LocalId id;
};

class LocalMailboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sock_dir_ = new TempDir();
    dovecot_ = new DovecotInstance();
    DovecotOptions o;
    for (const char* u :
         {"load", "resync", "ops", "entries", "submit", "subfail", "smtp", "timeout", "restore",
          "batch", "moved", "quick", "trashfp", "listc", "idmapc", "prefetch"}) {
      o.users.push_back({u, "pw", "userdb_mobilesync_enabled=yes"});
    }
    o.plugin_settings = "mobilesync_agent_socket = " + sock_dir_->path() + "/agent.sock\n";
    o.mail_debug = false;
    Status s = dovecot_->Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() {
    delete dovecot_;
    dovecot_ = nullptr;
    delete sock_dir_;
    sock_dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(dovecot_ != nullptr && dovecot_->running());
    base_.reset(event_base_new());
  }
  void TearDown() override {
    box_.reset();
    client_.reset();
    submitter_.reset();
  }

  // The agent's view: an ImapClient logged in as user*master.
  void Open(const std::string& user, MailSubmitterOptions sub = {}, bool with_submitter = false,
            LocalMailboxOptions mo = {}) {
    imap::ImapClientOptions o;
    o.port = dovecot_->imap_port();
    o.log_user = user;
    client_ = std::make_unique<imap::ImapClient>(base_.get(), o);
    bool done = false;
    Status st;
    client_->Connect([&](const Status& s) {
      st = s;
      done = true;
    });
    ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    ASSERT_TRUE(st.ok()) << st.ToString();
    done = false;
    imap::CommandResult r;
    client_->LoginAsMaster(user, "mobilesync-agent", "master-secret-pw",
                           [&](const imap::CommandResult& res) {
                             r = res;
                             done = true;
                           });
    ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    if (with_submitter) submitter_ = std::make_unique<MailSubmitter>(base_.get(), sub);
    box_ = std::make_unique<LocalMailbox>(client_.get(), user, mo, submitter_.get());
    user_ = user;
  }

  Loaded Load() {
    Loaded out;
    bool done = false;
    box_->LoadSnapshot([&](const Status& s, engine::AgentSnapshot snap, SnapshotInfo info) {
      out.status = s;
      out.snap = std::move(snap);
      out.info = info;
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    EXPECT_TRUE(out.status.ok()) << out.status.ToString();
    return out;
  }

  QuickCheck Quick(const std::string& token) {
    QuickCheck out;
    Status st;
    bool done = false;
    box_->LoadQuick(token, [&](const Status& s, QuickCheck q) {
      st = s;
      out = std::move(q);
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  Applied Apply(const Op& op, const std::string& body = "") {
    Applied out;
    bool done = false;
    box_->Apply(op, body, [&](const Status& s, const LocalId& id) {
      out.status = s;
      out.id = id;
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    return out;
  }

  // The user's own session (its changes are recorded by the plugin).
  void UserCmd(const std::string& cmd, imap::CommandResult* = nullptr) {
    ImapTestClient imap;
    ASSERT_TRUE(dovecot_->Login(user_, &imap).ok());
    testing::ImapResponse r;
    ASSERT_TRUE(imap.Command(cmd, &r).ok()) << cmd;
    ASSERT_TRUE(r.ok()) << cmd << ": " << r.tagged;
    imap.Logout();
  }
  // Runs commands in one user session; returns the untagged text of the last.
  std::string UserSession(const std::vector<std::string>& cmds) {
    ImapTestClient imap;
    EXPECT_TRUE(dovecot_->Login(user_, &imap).ok());
    std::string text;
    for (const std::string& c : cmds) {
      testing::ImapResponse r;
      EXPECT_TRUE(imap.Command(c, &r).ok()) << c;
      EXPECT_TRUE(r.ok()) << c << ": " << r.tagged;
      text = r.Text();
    }
    imap.Logout();
    return text;
  }

  // Every mobilesync attribute of the user, read the way a client would.
  std::map<std::string, std::string> Attributes() {
    ImapTestClient imap;
    EXPECT_TRUE(dovecot_->Login(user_, &imap).ok());
    std::map<std::string, std::string> out;
    Status s = testing::GetMetadata(&imap, "", kRoot, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    imap.Logout();
    return out;
  }

  void SetAttribute(const std::string& rel, const std::string& value) {
    UserCmd("SETMETADATA \"\" (" + std::string(kRoot) + "/" + rel + " " +
            testing::ImapQuote(value) + ")");
  }

  static const engine::LocalMessage* Find(const engine::AgentSnapshot& snap, const LocalId& id) {
    for (const auto& m : snap.messages) {
      if (m.id == id) return &m;
    }
    return nullptr;
  }
  static const engine::LocalMessage* FindByKey(const engine::AgentSnapshot& snap,
                                               const std::string& key) {
    for (const auto& m : snap.messages) {
      if (m.meta.match_key == key) return &m;
    }
    return nullptr;
  }

  static DovecotInstance* dovecot_;
  static TempDir* sock_dir_;
  EventBasePtr base_;
  std::unique_ptr<imap::ImapClient> client_;
  std::unique_ptr<MailSubmitter> submitter_;
  std::unique_ptr<LocalMailbox> box_;
  std::string user_;
  TempDir tmp_;
};
DovecotInstance* LocalMailboxTest::dovecot_ = nullptr;
TempDir* LocalMailboxTest::sock_dir_ = nullptr;

TEST_F(LocalMailboxTest, SnapshotFromPluginRecordedActionsMovesTheMapping) {
  Open("load");
  ASSERT_TRUE(dovecot_->Deliver("load", MakeTestMessage("one", "b1", "load@x", "<one@x>")).ok());
  ASSERT_TRUE(dovecot_->Deliver("load", MakeTestMessage("two", "b2", "load@x", "<two@x>")).ok());
  Loaded first = Load();
  ASSERT_EQ(first.snap.actions.size(), 2u);
  const engine::LocalMessage* two = FindByKey(first.snap, "<two@x>");
  ASSERT_NE(two, nullptr);
  LocalId two_inbox = two->id;
  EXPECT_EQ(two_inbox.mailbox, "INBOX");
  EXPECT_EQ(two_inbox.uidvalidity, first.snap.uidvalidity);
  EXPECT_EQ(two->meta.state, MessageState::kUnread);
  EXPECT_GT(two->meta.date, 1700000000);
  // The agent maps message two (as a sync would have).
  Op put;
  put.kind = OpKind::kPutMapping;
  put.local = two_inbox;
  put.remote = 77;
  ASSERT_TRUE(Apply(put).status.ok());
  Op gen;
  gen.kind = OpKind::kSetGeneration;
  gen.generation = 5;
  box_->set_server_name("srv-a");
  ASSERT_TRUE(Apply(gen).status.ok());

  // The user reads one and moves two to Trash: the plugin records both.
  UserSession({"SELECT INBOX", "UID STORE 1 +FLAGS (\\Seen)", "UID MOVE 2 Trash"});

  Loaded l = Load();
  EXPECT_EQ(l.snap.generation, 5u);
  EXPECT_FALSE(l.info.resync_requested);
  EXPECT_EQ(l.info.trash_box, "Trash");
  EXPECT_EQ(l.info.sent_box, "Sent");
  ASSERT_EQ(l.snap.actions.size(), 4u);
  EXPECT_EQ(l.snap.actions[0].kind, ActionKind::kInsert);
  EXPECT_EQ(l.snap.actions[0].meta.match_key, "<one@x>");
  EXPECT_EQ(l.snap.actions[1].kind, ActionKind::kInsert);
  EXPECT_EQ(l.snap.actions[2].kind, ActionKind::kMarkRead);
  EXPECT_EQ(l.snap.actions[2].meta.state, MessageState::kRead);
  EXPECT_EQ(l.snap.actions[3].kind, ActionKind::kMoveToTrash);
  EXPECT_EQ(l.snap.actions[3].meta.state, MessageState::kTrash);
  for (size_t i = 0; i < l.snap.actions.size(); ++i) EXPECT_EQ(l.snap.actions[i].seq, i + 1);
  LocalId in_trash = l.snap.actions[3].local;
  EXPECT_EQ(in_trash.mailbox, "Trash");
  const engine::LocalMessage* t = Find(l.snap, in_trash);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->meta.state, MessageState::kTrash);
  // Mapped (its mapping moves with it, below), so listed without its
  // Message-ID: its match key is its GUID.
  const std::string fetched =
      UserSession({"SELECT Trash", "UID FETCH " + std::to_string(in_trash.uid) + " (X-GUID)"});
  ASSERT_NE(fetched.find("X-GUID "), std::string::npos) << fetched;
  std::string guid = fetched.substr(fetched.find("X-GUID ") + 7);
  guid = guid.substr(0, guid.find_first_of(") \r\n"));
  EXPECT_EQ(t->meta.match_key, guid);
  const engine::LocalMessage* one = FindByKey(l.snap, "<one@x>");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->meta.state, MessageState::kRead);
  // The mapping followed the message in memory.
  ASSERT_NE(l.snap.map.FindRemote(in_trash), nullptr);
  EXPECT_EQ(*l.snap.map.FindRemote(in_trash), 77u);
  EXPECT_EQ(l.snap.map.FindRemote(two_inbox), nullptr);
  std::string old_key = std::string(kRoot) + "/map/" + std::to_string(two_inbox.uidvalidity) + "-" +
                        std::to_string(two_inbox.uid);
  std::string new_key = std::string(kRoot) + "/map/" + std::to_string(in_trash.uidvalidity) + "-" +
                        std::to_string(in_trash.uid);
  // Durably only with the session's first attribute write: until then the
  // trash entry is still there, and a snapshot taken again (after a crash)
  // moves the mapping the same way.
  auto attrs = Attributes();
  EXPECT_EQ(attrs.count(old_key), 1u);
  EXPECT_EQ(attrs.count(new_key), 0u);
  Loaded again = Load();
  ASSERT_NE(again.snap.map.FindRemote(in_trash), nullptr);
  EXPECT_EQ(*again.snap.map.FindRemote(in_trash), 77u);
  EXPECT_EQ(again.snap.map.FindRemote(two_inbox), nullptr);
  ASSERT_TRUE(Apply(gen).status.ok());
  attrs = Attributes();
  EXPECT_EQ(attrs.count(old_key), 0u);
  ASSERT_EQ(attrs.count(new_key), 1u);
  EXPECT_EQ(attrs[new_key].rfind("v1 remote=77 box=Trash guid=", 0), 0u) << attrs[new_key];
  EXPECT_EQ(attrs[std::string(kRoot) + "/generation"], "v1 gen=5 server=srv-a");

  // A generation written for another server does not count.
  box_->set_server_name("srv-b");
  EXPECT_EQ(Load().snap.generation, 0u);
}

TEST_F(LocalMailboxTest, ResyncAndCorruptEntriesForceAnInitialSync) {
  Open("resync");
  Op gen;
  gen.kind = OpKind::kSetGeneration;
  gen.generation = 9;
  ASSERT_TRUE(Apply(gen).status.ok());
  EXPECT_EQ(Load().snap.generation, 9u);

  plugin::ActionRecord rec;
  rec.kind = plugin::ActionKind::kResync;
  rec.box = "Trash";
  rec.ts_us = 1763800001000000;
  rec.reason = "rename";
  std::string value;
  ASSERT_TRUE(plugin::FormatActionValue(rec, &value).ok());
  std::string resync_key = "action/" + plugin::FormatActionKeyId(rec.ts_us, 1, 1);
  SetAttribute(resync_key, value);
  Loaded l = Load();
  EXPECT_TRUE(l.info.resync_requested);
  EXPECT_EQ(l.snap.generation, 0u);
  EXPECT_TRUE(l.snap.actions.empty());
  auto attrs = Attributes();
  EXPECT_EQ(attrs.count(std::string(kRoot) + "/generation"), 0u);
  // The resync entry did its job (the generation is gone): removed.
  EXPECT_EQ(attrs.count(std::string(kRoot) + "/" + resync_key), 0u);

  ASSERT_TRUE(Apply(gen).status.ok());
  std::string bad_key = "action/" + plugin::FormatActionKeyId(rec.ts_us + 1, 1, 2);
  SetAttribute(bad_key, "v1 kind=insert box=INBOX uidvalidity=01 uid=1 guid= ts=1");
  l = Load();
  EXPECT_TRUE(l.info.resync_requested);
  EXPECT_EQ(l.info.corrupt_entries, 1u);
  EXPECT_EQ(l.info.action_entries, 1u);
  EXPECT_EQ(l.snap.generation, 0u);
  attrs = Attributes();
  EXPECT_EQ(attrs.count(std::string(kRoot) + "/generation"), 0u);
  // Deleted after the generation: the initial sync covers what it recorded.
  EXPECT_EQ(attrs.count(std::string(kRoot) + "/" + bad_key), 0u);
}

TEST_F(LocalMailboxTest, EveryMailboxOpAndItsIdempotency) {
  Open("ops");
  const std::string msg = MakeTestMessage("appended", "hello", "ops@x", "<app@x>");
  Op app;
  app.kind = OpKind::kAppendLocal;
  app.message.id = 500;
  app.message.meta.match_key = "<app@x>";
  app.message.meta.date = 1763800000;
  app.message.meta.state = MessageState::kRead;
  app.message.meta.flagged = true;
  Applied a = Apply(app, msg);
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  ASSERT_TRUE(a.id.valid());
  EXPECT_EQ(a.id.mailbox, "INBOX");

  Loaded l = Load();
  EXPECT_TRUE(l.snap.actions.empty()) << "the plugin must not record the agent's own changes";
  const engine::LocalMessage* m = Find(l.snap, a.id);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->meta.state, MessageState::kRead);
  EXPECT_TRUE(m->meta.flagged);
  EXPECT_EQ(m->meta.date, 1763800000);
  EXPECT_EQ(m->meta.match_key, "<app@x>");

  // FetchBody returns the bytes.
  bool done = false;
  std::string body;
  Status bs;
  box_->FetchBody(a.id, [&](const Status& s, std::string b) {
    bs = s;
    body = b;
    done = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  ASSERT_TRUE(bs.ok()) << bs.ToString();
  EXPECT_NE(body.find("hello"), std::string::npos);

  // Unread in place.
  Op st;
  st.kind = OpKind::kSetLocalState;
  st.local = a.id;
  st.state = MessageState::kUnread;
  Applied u = Apply(st);
  ASSERT_TRUE(u.status.ok()) << u.status.ToString();
  EXPECT_EQ(u.id, a.id);
  EXPECT_EQ(Find(Load().snap, a.id)->meta.state, MessageState::kUnread);

  // Mapped, then moved to Trash: new id, mapping follows.
  Op put;
  put.kind = OpKind::kPutMapping;
  put.local = a.id;
  put.remote = 500;
  ASSERT_TRUE(Apply(put).status.ok());
  st.state = MessageState::kTrash;
  Applied t = Apply(st);
  ASSERT_TRUE(t.status.ok()) << t.status.ToString();
  EXPECT_EQ(t.id.mailbox, "Trash");
  EXPECT_TRUE(t.id.valid());
  l = Load();
  EXPECT_EQ(Find(l.snap, a.id), nullptr);
  ASSERT_NE(Find(l.snap, t.id), nullptr);
  EXPECT_EQ(Find(l.snap, t.id)->meta.state, MessageState::kTrash);
  ASSERT_NE(l.snap.map.FindRemote(t.id), nullptr);
  EXPECT_EQ(*l.snap.map.FindRemote(t.id), 500u);
  EXPECT_FALSE(l.snap.map.HasLocal(a.id));
  EXPECT_TRUE(l.snap.actions.empty());

  // Moving the old id again: it is not there any more.
  Applied again = Apply(st);
  EXPECT_TRUE(again.status.IsNotFound()) << again.status.ToString();
  EXPECT_NE(again.status.message().find("INBOX"), std::string::npos) << again.status.ToString();

  // Restore as read: back in INBOX with \Seen.
  Op rs;
  rs.kind = OpKind::kSetLocalState;
  rs.local = t.id;
  rs.state = MessageState::kRead;
  Applied r = Apply(rs);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.id.mailbox, "INBOX");
  EXPECT_NE(r.id, a.id);
  l = Load();
  ASSERT_NE(Find(l.snap, r.id), nullptr);
  EXPECT_EQ(Find(l.snap, r.id)->meta.state, MessageState::kRead);
  EXPECT_EQ(*l.snap.map.FindRemote(r.id), 500u);

  // Remove the mapping (twice: a missing attribute is fine).
  Op rm;
  rm.kind = OpKind::kRemoveMapping;
  rm.local = r.id;
  ASSERT_TRUE(Apply(rm).status.ok());
  ASSERT_TRUE(Apply(rm).status.ok());
  EXPECT_TRUE(Load().snap.map.empty());

  // Destroy, twice, and in a mailbox that does not exist.
  Op d;
  d.kind = OpKind::kDestroyLocal;
  d.local = r.id;
  ASSERT_TRUE(Apply(d).status.ok());
  EXPECT_EQ(Find(Load().snap, r.id), nullptr);
  Applied d2 = Apply(d);
  EXPECT_TRUE(d2.status.ok()) << d2.status.ToString();
  d.local = LocalId{"NoSuchBox", 1, 1};
  Applied d3 = Apply(d);
  EXPECT_TRUE(d3.status.ok()) << d3.status.ToString();

  // Append straight into Trash.
  app.message.meta.state = MessageState::kTrash;
  Applied at = Apply(app, MakeTestMessage("t", "t", "ops@x", "<t@x>"));
  ASSERT_TRUE(at.status.ok()) << at.status.ToString();
  EXPECT_EQ(at.id.mailbox, "Trash");
  EXPECT_EQ(Find(Load().snap, at.id)->meta.state, MessageState::kTrash);
}

// The server destroys a message the user moved to Trash after the session's
// snapshot: the destroy names the old INBOX uid, which is gone. The message
// is found by its GUID and destroyed in Trash; a message that only looks the
// same (same Message-ID, another GUID) stays.
TEST_F(LocalMailboxTest, DestroyFindsAMessageMovedSinceTheSnapshotByGuid) {
  Open("moved");
  Op app;
  app.kind = OpKind::kAppendLocal;
  app.message.id = 1;
  app.message.meta.state = MessageState::kUnread;
  Applied a = Apply(app, MakeTestMessage("doomed", "body", "moved@x", "<doomed@x>"));
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  app.message.meta.state = MessageState::kTrash;
  Applied twin = Apply(app, MakeTestMessage("doomed", "body", "moved@x", "<doomed@x>"));
  ASSERT_TRUE(twin.status.ok()) << twin.status.ToString();
  ASSERT_EQ(twin.id.mailbox, "Trash");
  Loaded before = Load();
  ASSERT_NE(Find(before.snap, a.id), nullptr);

  // The user moves it to Trash after the snapshot.
  UserSession({"SELECT INBOX", "UID MOVE " + std::to_string(a.id.uid) + " Trash"});

  Op d;
  d.kind = OpKind::kDestroyLocal;
  d.local = a.id;
  Applied r = Apply(d);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  Loaded after = Load();
  EXPECT_EQ(after.snap.messages.size(), 1u) << "only the look-alike may be left";
  EXPECT_NE(Find(after.snap, twin.id), nullptr) << "a message with another GUID was destroyed";

  // Again: gone everywhere, still a success.
  Applied again = Apply(d);
  EXPECT_TRUE(again.status.ok()) << again.status.ToString();
  EXPECT_NE(Find(Load().snap, twin.id), nullptr);
}

TEST_F(LocalMailboxTest, ActionEntriesAndGeneration) {
  Open("entries");
  ASSERT_TRUE(dovecot_->Deliver("entries", MakeTestMessage("a", "a")).ok());
  ASSERT_TRUE(dovecot_->Deliver("entries", MakeTestMessage("b", "b")).ok());
  Loaded l = Load();
  ASSERT_EQ(l.snap.actions.size(), 2u);
  Op del;
  del.kind = OpKind::kDeleteActionEntry;
  del.seq = 1;
  ASSERT_TRUE(Apply(del).status.ok());
  ASSERT_TRUE(Apply(del).status.ok());  // already gone: fine
  del.seq = 99;
  Applied bad = Apply(del);
  EXPECT_TRUE(bad.status.IsInvalidArgument()) << bad.status.ToString();
  l = Load();
  ASSERT_EQ(l.snap.actions.size(), 1u);
  EXPECT_EQ(l.info.action_entries, 1u);
  EXPECT_EQ(l.snap.actions[0].seq, 1u);  // renumbered per snapshot
  EXPECT_EQ(l.snap.actions[0].kind, ActionKind::kInsert);

  Op gen;
  gen.kind = OpKind::kSetGeneration;
  gen.generation = 12345678901234ull;
  box_->set_server_name("s 1");
  ASSERT_TRUE(Apply(gen).status.ok());
  EXPECT_EQ(Attributes()[std::string(kRoot) + "/generation"], "v1 gen=12345678901234 server=s%201");
  EXPECT_EQ(Load().snap.generation, 12345678901234ull);
  gen.generation = 0;
  ASSERT_TRUE(Apply(gen).status.ok());
  EXPECT_EQ(Attributes().count(std::string(kRoot) + "/generation"), 0u);
  EXPECT_EQ(Load().snap.generation, 0u);
}

// The quick token (QuickToken): a session that wrote its quick entry gets a
// token from the quick check at its end; the next check takes the token's
// word without reading an attribute while INBOX's and Trash's STATUS,
// HIGHESTMODSEQ included, stay the same. An attribute written by another
// process (nothing else changed: the premise that every attribute write
// moves INBOX's HIGHESTMODSEQ, on the real Dovecot), a delivery, a flag
// change by the user, an expired or a damaged token all send the check back
// to the attributes, which then say what really changed.
TEST_F(LocalMailboxTest, QuickTokenHoldsUntilAnythingMoves) {
  ASSERT_TRUE(dovecot_->Deliver("quick", MakeTestMessage("q1", "one")).ok());
  Open("quick");
  box_->set_server_name("srv");
  Loaded l = Load();
  ASSERT_EQ(l.snap.actions.size(), 1u);  // the delivery
  Op del;
  del.kind = OpKind::kDeleteActionEntry;
  del.seq = 1;
  ASSERT_TRUE(Apply(del).status.ok());
  EXPECT_FALSE(box_->wrote_quick_entry());
  box_->set_remote_window(25);
  Op gen;
  gen.kind = OpKind::kSetGeneration;
  gen.generation = 7;
  ASSERT_TRUE(Apply(gen).status.ok());
  ASSERT_TRUE(box_->wrote_quick_entry());

  // The check at the session's end: from the attributes, with a token.
  QuickCheck sealed = Quick("");
  ASSERT_TRUE(sealed.unchanged) << sealed.why;
  EXPECT_FALSE(sealed.from_token);
  EXPECT_EQ(sealed.generation, 7u);
  EXPECT_EQ(sealed.window_size, 25u);
  ASSERT_FALSE(sealed.token.empty());
  QuickToken t;
  std::string why;
  ASSERT_TRUE(ParseQuickToken(sealed.token, time(nullptr), &t, &why)) << why;
  EXPECT_EQ(t.generation, 7u);
  EXPECT_EQ(t.window_size, 25u);

  // The next session (a new connection, a new Dovecot process).
  Open("quick");
  QuickCheck q = Quick(sealed.token);
  ASSERT_TRUE(q.unchanged) << q.why;
  EXPECT_TRUE(q.from_token);
  EXPECT_EQ(q.generation, 7u);
  EXPECT_EQ(q.window_size, 25u);
  EXPECT_EQ(q.token, sealed.token);

  // An action entry written by another process, and nothing else.
  const std::string entry = "action/00000000000000ff-00000001-00000001";
  ASSERT_TRUE(dovecot_->Deliver("quick", MakeTestMessage("q2", "two")).ok());
  Open("quick");
  box_->set_server_name("srv");
  box_->set_remote_window(25);
  l = Load();
  ASSERT_EQ(l.snap.actions.size(), 1u);
  // (a state with no entry again, sealed anew: the delivery moved UIDNEXT)
  ASSERT_TRUE(Apply(del).status.ok());
  ASSERT_TRUE(Apply(gen).status.ok());
  sealed = Quick("");
  ASSERT_TRUE(sealed.unchanged) << sealed.why;
  ASSERT_FALSE(sealed.token.empty());
  SetAttribute(entry, "v1 kind=read box=INBOX uidvalidity=1 uid=1 guid= ts=255");
  Open("quick");
  q = Quick(sealed.token);
  EXPECT_FALSE(q.unchanged);
  EXPECT_FALSE(q.from_token);
  EXPECT_EQ(q.why, "action entries to replay");

  // Gone again: the old token no longer matches (HIGHESTMODSEQ moved on),
  // the attributes say nothing is to be done, and a new token is made.
  UserCmd("SETMETADATA \"\" (" + std::string(kRoot) + "/" + entry + " NIL)");
  q = Quick(sealed.token);
  ASSERT_TRUE(q.unchanged) << q.why;
  EXPECT_FALSE(q.from_token);
  ASSERT_FALSE(q.token.empty());
  EXPECT_NE(q.token, sealed.token);
  const std::string fresh = q.token;
  EXPECT_TRUE(Quick(fresh).from_token);

  // A flag change by the user (recorded by the plugin) moves it too.
  UserSession({"SELECT INBOX", "UID STORE 1:* +FLAGS (\\Flagged)"});
  q = Quick(fresh);
  EXPECT_FALSE(q.from_token);

  // An expired token, a damaged one, one from the future: not taken.
  std::string fp = plugin::PercentEncode(t.print);
  for (const std::string& bad :
       {MakeQuickToken(7, 25, t.print, time(nullptr) - kQuickTokenMaxAgeS - 10),
        MakeQuickToken(7, 25, t.print, time(nullptr) + 3600), std::string("v1 gen=7 n=25"),
        std::string("v2 gen=7 n=25 ts=1 fp=") + fp, std::string("garbage")}) {
    EXPECT_FALSE(ParseQuickToken(bad, time(nullptr), &t, &why)) << bad;
    EXPECT_FALSE(Quick(bad).from_token) << bad;
  }
}

// The fingerprint asks STATUS of the Trash it expects before LIST says
// which mailbox Trash is: a wrong expectation (the options' default, a
// token's) costs a STATUS, never a different print. Mail that reaches
// Trash alone still shows.
TEST_F(LocalMailboxTest, TrashGuessesNeverChangeThePrint) {
  ASSERT_TRUE(dovecot_->Deliver("trashfp", MakeTestMessage("t1", "one")).ok());
  Open("trashfp");
  box_->set_server_name("srv");
  ASSERT_EQ(Load().snap.actions.size(), 1u);
  Op del;
  del.kind = OpKind::kDeleteActionEntry;
  del.seq = 1;
  ASSERT_TRUE(Apply(del).status.ok());
  box_->set_remote_window(25);
  Op gen;
  gen.kind = OpKind::kSetGeneration;
  gen.generation = 9;
  ASSERT_TRUE(Apply(gen).status.ok());
  auto print_of = [](const std::string& token) {
    QuickToken t;
    std::string why;
    EXPECT_TRUE(ParseQuickToken(token, time(nullptr), &t, &why)) << why << ": " << token;
    return t.print;
  };
  QuickCheck sealed = Quick("");
  ASSERT_TRUE(sealed.unchanged) << sealed.why;
  const std::string want = print_of(sealed.token);
  ASSERT_NE(want.find(" trash=Trash:"), std::string::npos) << want;

  // The options name a mailbox that does not exist; no token to go by.
  LocalMailboxOptions bin;
  bin.trash_mailbox = "Bin";
  Open("trashfp", {}, false, bin);
  QuickCheck q = Quick("");
  ASSERT_TRUE(q.unchanged) << q.why;
  EXPECT_EQ(print_of(q.token), want);

  // A token that says Trash is Sent: not taken, and the print is right.
  std::string wrong = want;
  wrong.replace(wrong.find("trash=Trash:"), 12, "trash=Sent:");
  Open("trashfp");
  q = Quick(MakeQuickToken(9, 25, wrong, time(nullptr)));
  EXPECT_FALSE(q.from_token);
  ASSERT_TRUE(q.unchanged) << q.why;
  EXPECT_EQ(print_of(q.token), want);

  // The right token on a new connection: taken.
  Open("trashfp");
  EXPECT_TRUE(Quick(sealed.token).from_token);

  // A copy into Trash changes Trash alone: the token no longer holds.
  UserSession({"SELECT INBOX", "UID COPY 1:* Trash"});
  Open("trashfp");
  q = Quick(sealed.token);
  EXPECT_FALSE(q.from_token);
  EXPECT_FALSE(q.unchanged);
  // (decided by the STATUS lines alone: no attribute is read for it)
  EXPECT_EQ(q.why, "the mailbox changed since the quick token");
}

// Every message of INBOX and Trash, as the engine sees them, in order.
std::string Describe(const engine::AgentSnapshot& snap) {
  std::vector<std::string> out;
  for (const auto& m : snap.messages) {
    out.push_back(m.id.mailbox + "/" + std::to_string(m.id.uidvalidity) + "/" +
                  std::to_string(m.id.uid) + " state=" + std::to_string(int(m.meta.state)) +
                  " flagged=" + std::to_string(m.meta.flagged) +
                  " date=" + std::to_string(m.meta.date) +
                  " order=" + std::to_string(m.meta.order) + " key=" + m.meta.match_key);
  }
  std::sort(out.begin(), out.end());
  std::string all;
  for (const auto& line : out) all += line + "\n";
  return all;
}

// With the listing cache a session lists only what changed since the last
// one (CHANGEDSINCE, UID SEARCH), and sees exactly what listing every
// message sees: flags set and cleared, moves to Trash, expunges, new mail
// with and without a Message-ID, mapped and unmapped messages. A listing of
// another UIDVALIDITY, a damaged one or one that is too old is not used.
TEST_F(LocalMailboxTest, ListingCacheSeesWhatAFullListingSees) {
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(dovecot_->Deliver("listc", MakeTestMessage("m" + std::to_string(i), "b")).ok());
  }
  TempDir dir;
  LocalMailboxOptions cached;
  cached.listing_dir = dir.path();
  const std::string inbox_file = ListingPath(dir.path(), "listc", "INBOX");
  auto full = [&] {
    Open("listc");
    return Describe(Load().snap);
  };
  auto with_cache = [&] {
    Open("listc", {}, false, cached);
    return Describe(Load().snap);
  };

  // The first listing is a full one, and is kept.
  const std::string first = with_cache();
  ASSERT_EQ(std::count(first.begin(), first.end(), '\n'), 12) << first;
  BoxListing kept;
  ASSERT_TRUE(ReadListing(inbox_file, "listc", "INBOX", &kept).ok());
  EXPECT_EQ(kept.messages.size(), 12u);
  EXPECT_NE(kept.modseq, 0u);
  EXPECT_EQ(first, full());

  // Map UIDs 1-4 (their Message-ID is then not needed).
  Open("listc", {}, false, cached);
  Loaded l = Load();
  for (const auto& m : l.snap.messages) {
    if (m.id.uid > 4) continue;
    Op put;
    put.kind = OpKind::kPutMapping;
    put.local = m.id;
    put.remote = 300 + m.id.uid;
    ASSERT_TRUE(Apply(put).status.ok());
  }
  EXPECT_EQ(with_cache(), full());

  // Changes of every kind by the user, then mail without a Message-ID.
  UserSession({"SELECT INBOX", "UID STORE 1,5 +FLAGS (\\Seen)", "UID STORE 2 +FLAGS (\\Flagged)",
               "UID STORE 1 -FLAGS (\\Seen)", "UID MOVE 3,6 Trash",
               "UID STORE 7 +FLAGS (\\Deleted)", "UID EXPUNGE 7"});
  ASSERT_TRUE(dovecot_->Deliver("listc", MakeTestMessage("new", "n")).ok());
  ASSERT_TRUE(
      dovecot_->Deliver("listc", "From: <a@example.test>\r\nSubject: no id\r\n\r\nbody\r\n").ok());
  const std::string after = with_cache();
  EXPECT_EQ(after, full());
  EXPECT_NE(after, first);
  ASSERT_TRUE(ReadListing(inbox_file, "listc", "INBOX", &kept).ok());
  EXPECT_EQ(kept.messages.size(), 11u);  // 12 - 2 moved - 1 expunged + 2 new
  EXPECT_TRUE(kept.messages.count(13) && kept.messages.count(14));
  EXPECT_FALSE(kept.messages.count(3) || kept.messages.count(7));
  EXPECT_TRUE(kept.messages[5].seen && !kept.messages[1].seen && kept.messages[2].flagged);
  BoxListing trash;
  ASSERT_TRUE(
      ReadListing(ListingPath(dir.path(), "listc", "Trash"), "listc", "Trash", &trash).ok());
  EXPECT_EQ(trash.messages.size(), 2u);

  // The cache is what the session used: a GUID changed in it shows (a
  // cached message that did not change is not fetched again).
  BoxListing doctored = kept;
  doctored.messages[4].guid = "doctored";  // mapped: its key is its GUID
  ASSERT_TRUE(WriteListing(inbox_file, doctored).ok());
  EXPECT_NE(with_cache().find("key=doctored"), std::string::npos);
  // ...and is not, once the user changes that message's flags.
  ASSERT_TRUE(WriteListing(inbox_file, doctored).ok());
  UserSession({"SELECT INBOX", "UID STORE 4 +FLAGS (\\Seen)"});
  std::string now = with_cache();
  EXPECT_EQ(now.find("key=doctored"), std::string::npos);
  EXPECT_EQ(now, full());

  // Not used: another UIDVALIDITY, too old, damaged, another user's.
  for (int variant = 0; variant < 4; ++variant) {
    ASSERT_TRUE(ReadListing(inbox_file, "listc", "INBOX", &kept).ok());
    BoxListing bad = kept;
    bad.messages.begin()->second.guid = "doctored";
    if (variant == 0) bad.uidvalidity += 1;
    if (variant == 1) bad.listed_s -= kMaxListingAgeS + 10;
    if (variant == 3) bad.user = "load";
    ASSERT_TRUE(WriteListing(inbox_file, bad).ok());
    if (variant == 2) {
      std::string text = EncodeListing(bad);
      text[text.size() / 2] ^= 1;
      FILE* f = fopen(inbox_file.c_str(), "w");
      ASSERT_NE(f, nullptr);
      fwrite(text.data(), 1, text.size(), f);
      fclose(f);
    }
    EXPECT_EQ(with_cache().find("key=doctored"), std::string::npos) << variant;
    // ...and replaced by a good one.
    ASSERT_TRUE(ReadListing(inbox_file, "listc", "INBOX", &kept).ok()) << variant;
    EXPECT_EQ(kept.messages.begin()->second.guid.find("doctored"), std::string::npos);
  }
  EXPECT_EQ(with_cache(), full());
}

// With the id map cache a session takes the id map from state_dir instead
// of reading it from Dovecot, exactly while Dovecot's `mapstamp` is the one
// the cache was kept with, and sees what a full read sees: through puts,
// moves (the agent's and the user's), removals, destroys, a write whose
// outcome is not known yet, and an administrator's edit that deleted the
// stamp as docs/attributes.md says to.
TEST_F(LocalMailboxTest, IdMapCacheSeesWhatAFullReadSees) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(dovecot_->Deliver("idmapc", MakeTestMessage("m" + std::to_string(i), "b")).ok());
  }
  TempDir dir;
  LocalMailboxOptions cached;
  cached.listing_dir = dir.path();
  const std::string file = IdMapPath(dir.path(), "idmapc");
  const std::string map_prefix = std::string(kRoot) + "/map/";
  const std::string stamp_key = std::string(kRoot) + "/mapstamp";
  auto describe = [](const Loaded& l) {
    std::string out = Describe(l.snap);
    for (const auto& [local, remote] : l.snap.map.pairs()) {
      out += "map " + local.mailbox + "/" + std::to_string(local.uidvalidity) + "/" +
             std::to_string(local.uid) + " -> " + std::to_string(remote) + "\n";
    }
    return out;
  };
  auto full = [&] {
    Open("idmapc");
    return describe(Load());
  };
  auto with_cache = [&] {
    Open("idmapc", {}, false, cached);
    return describe(Load());
  };
  // What the file holds is Dovecot's map, under Dovecot's stamp.
  auto expect_file_is_dovecots = [&](size_t entries) {
    IdMapCache c;
    Status s = ReadIdMap(file, "idmapc", &c);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto attrs = Attributes();
    std::map<std::string, std::string> map;
    for (const auto& [key, value] : attrs) {
      if (key.rfind(map_prefix, 0) == 0) map[key.substr(map_prefix.size())] = value;
    }
    EXPECT_TRUE(c.entries == map);
    EXPECT_EQ(c.entries.size(), entries);
    ASSERT_EQ(attrs.count(stamp_key), 1u);
    EXPECT_EQ(c.stamp, attrs[stamp_key]);
    EXPECT_EQ(c.stamp.rfind("v1 id=", 0), 0u) << c.stamp;
  };
  auto op = [](OpKind kind, const LocalId& local) {
    Op o;
    o.kind = kind;
    o.local = local;
    return o;
  };

  // No map and no stamp yet: nothing to keep.
  Open("idmapc", {}, false, cached);
  Loaded l = Load();
  ASSERT_EQ(l.snap.messages.size(), 6u);
  box_->SaveIdMapCache();
  IdMapCache c;
  EXPECT_TRUE(ReadIdMap(file, "idmapc", &c).IsNotFound());

  // Map UIDs 1-5: every write sets a new stamp, the file keeps the last.
  std::map<uint32_t, LocalId> by_uid;
  for (const auto& m : l.snap.messages) by_uid[m.id.uid] = m.id;
  std::string last_stamp;
  for (uint32_t uid = 1; uid <= 5; ++uid) {
    Op put = op(OpKind::kPutMapping, by_uid[uid]);
    put.remote = 100 + uid;
    ASSERT_TRUE(Apply(put).status.ok());
    auto attrs = Attributes();
    EXPECT_NE(attrs[stamp_key], last_stamp);
    last_stamp = attrs[stamp_key];
  }
  box_->SaveIdMapCache();
  expect_file_is_dovecots(5);
  const std::string mapped = full();
  EXPECT_EQ(with_cache(), mapped);
  EXPECT_NE(mapped.find(" -> 103\n"), std::string::npos) << mapped;

  // The cache is what the session used: an entry changed in it shows...
  ASSERT_TRUE(ReadIdMap(file, "idmapc", &c).ok());
  IdMapCache doctored = c;
  const std::string uv = std::to_string(by_uid[3].uidvalidity);
  ASSERT_EQ(doctored.entries.count(uv + "-3"), 1u);
  std::string& v = doctored.entries[uv + "-3"];
  v.replace(v.find("remote=103"), 10, "remote=999");
  ASSERT_TRUE(WriteIdMap(file, doctored).ok());
  EXPECT_NE(with_cache().find(" -> 999\n"), std::string::npos);
  // ...but not when it is too old, another user's or damaged.
  for (int variant = 0; variant < 3; ++variant) {
    IdMapCache bad = doctored;
    if (variant == 0) bad.read_s -= kMaxIdMapAgeS + 10;
    if (variant == 1) bad.user = "load";
    std::string text = EncodeIdMap(bad);
    if (variant == 2) text[text.size() / 2] ^= 1;
    ASSERT_TRUE(cache_file::Replace(file, text).ok());
    EXPECT_EQ(with_cache(), mapped) << variant;
  }
  ASSERT_TRUE(WriteIdMap(file, c).ok());

  // The user moves UID 1 to Trash (the plugin records it; the mapping moves
  // with the session's first write); the agent moves UID 2, removes the
  // mapping of UID 3 and destroys UID 4.
  UserSession({"SELECT INBOX", "UID MOVE 1 Trash"});
  Open("idmapc", {}, false, cached);
  l = Load();
  ASSERT_FALSE(l.snap.actions.empty());
  const LocalId user_moved = l.snap.actions.back().local;
  EXPECT_EQ(user_moved.mailbox, "Trash");
  ASSERT_NE(l.snap.map.FindRemote(user_moved), nullptr);
  EXPECT_EQ(*l.snap.map.FindRemote(user_moved), 101u);
  Op trash = op(OpKind::kSetLocalState, by_uid[2]);
  trash.state = MessageState::kTrash;
  Applied moved = Apply(trash);
  ASSERT_TRUE(moved.status.ok()) << moved.status.ToString();
  EXPECT_EQ(moved.id.mailbox, "Trash");
  ASSERT_TRUE(Apply(op(OpKind::kRemoveMapping, by_uid[3])).status.ok());
  ASSERT_TRUE(Apply(op(OpKind::kDestroyLocal, by_uid[4])).status.ok());
  ASSERT_TRUE(Apply(op(OpKind::kRemoveMapping, by_uid[4])).status.ok());
  box_->SaveIdMapCache();
  expect_file_is_dovecots(3);  // UID 1 and 2 (in Trash now) and 5
  const std::string after = full();
  EXPECT_EQ(with_cache(), after);
  EXPECT_NE(after, mapped);
  EXPECT_EQ(after.find(" -> 103\n"), std::string::npos) << after;
  EXPECT_NE(after.find("map Trash/"), std::string::npos) << after;

  // A write whose answer has not come when the session ends: the cache is
  // removed (what Dovecot holds is not known), and the next session reads
  // the map.
  Open("idmapc", {}, false, cached);
  l = Load();
  bool done = false;
  Op put = op(OpKind::kPutMapping, by_uid[6]);
  put.remote = 106;
  box_->Apply(put, "", [&](const Status& s, const LocalId&) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    done = true;
  });
  box_->SaveIdMapCache();
  EXPECT_TRUE(ReadIdMap(file, "idmapc", &c).IsNotFound());
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  const std::string with_six = full();
  EXPECT_NE(with_six.find(" -> 106\n"), std::string::npos) << with_six;
  EXPECT_EQ(with_cache(), with_six);
  box_->SaveIdMapCache();  // read whole: kept again
  expect_file_is_dovecots(4);

  // An administrator edits an entry and deletes the stamp: the cache is not
  // used, and the next session that writes the map stamps it again.
  SetAttribute("map/" + uv + "-5", "v1 remote=555 box=INBOX guid=x");
  UserCmd("SETMETADATA \"\" (" + stamp_key + " NIL)");
  const std::string edited = full();
  EXPECT_NE(edited.find(" -> 555\n"), std::string::npos) << edited;
  EXPECT_EQ(with_cache(), edited);
  ASSERT_TRUE(Apply(op(OpKind::kRemoveMapping, by_uid[6])).status.ok());
  box_->SaveIdMapCache();
  expect_file_is_dovecots(3);
  EXPECT_EQ(with_cache(), full());
}

// With the listing cache, a snapshot also fetches the bodies of the
// messages new in INBOX since the last listing (the ones an update sync
// inserts), at most 64 of them, while INBOX is selected; FetchBodies hands
// each out once. Shown by expunging them after the snapshot: what was
// fetched ahead still comes back, the rest is gone.
TEST_F(LocalMailboxTest, SnapshotFetchesNewBodiesAheadOnce) {
  TempDir dir;
  LocalMailboxOptions cached;
  cached.listing_dir = dir.path();
  ASSERT_TRUE(dovecot_->Deliver("prefetch", MakeTestMessage("old", "old body")).ok());
  Open("prefetch", {}, false, cached);
  Loaded first = Load();  // lists everything: nothing is fetched ahead
  ASSERT_EQ(first.snap.messages.size(), 1u);
  const LocalId old_id = first.snap.messages[0].id;
  for (int i = 0; i < 66; ++i) {
    ASSERT_TRUE(dovecot_
                    ->Deliver("prefetch", MakeTestMessage("new" + std::to_string(i),
                                                          "body " + std::to_string(i)))
                    .ok());
  }
  Open("prefetch", {}, false, cached);
  Loaded l = Load();
  ASSERT_EQ(l.snap.messages.size(), 67u);
  std::vector<LocalId> all;
  for (const auto& m : l.snap.messages) all.push_back(m.id);
  std::sort(all.begin(), all.end(),
            [](const LocalId& a, const LocalId& b) { return a.uid < b.uid; });
  ASSERT_EQ(all[0], old_id);
  UserSession({"SELECT INBOX", "UID STORE 1:* +FLAGS (\\Deleted)", "EXPUNGE"});

  auto fetch = [&](const std::vector<LocalId>& ids) {
    std::map<LocalId, std::string> out;
    bool done = false;
    box_->FetchBodies(ids, [&](const Status& s, std::map<LocalId, std::string> bodies) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      out = std::move(bodies);
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    return out;
  };
  std::map<LocalId, std::string> bodies = fetch(all);
  EXPECT_EQ(bodies.size(), 64u);  // the first 64 new ones; not the old one, not the last 2
  EXPECT_EQ(bodies.count(old_id), 0u);
  for (size_t i = 1; i <= 64; ++i) {
    ASSERT_EQ(bodies.count(all[i]), 1u) << i;
    EXPECT_NE(bodies[all[i]].find("body " + std::to_string(i - 1)), std::string::npos) << i;
    EXPECT_NE(bodies[all[i]].find("Subject: new" + std::to_string(i - 1) + "\r\n"),
              std::string::npos);
  }
  EXPECT_EQ(bodies.count(all[65]) + bodies.count(all[66]), 0u);
  EXPECT_TRUE(fetch({all[1]}).empty());  // handed out once; now really gone
}

// The token's own format: round trip, bounds, every required field.
TEST(QuickToken, RoundTripAndBounds) {
  const int64_t now = 1800000000;
  const std::string print = "inbox=1.2.3 trash=Trash:4.5.6 opts=99 modseq=7.8";
  QuickToken t;
  std::string why;
  ASSERT_TRUE(ParseQuickToken(MakeQuickToken(42, 100, print, now - 5), now, &t, &why)) << why;
  EXPECT_EQ(t.generation, 42u);
  EXPECT_EQ(t.window_size, 100u);
  EXPECT_EQ(t.print, print);
  EXPECT_EQ(t.made_s, now - 5);
  EXPECT_TRUE(ParseQuickToken(MakeQuickToken(1, 1, "x", now - kQuickTokenMaxAgeS), now, &t, &why));
  for (const std::string& bad : {
           MakeQuickToken(0, 100, print, now),  // generation 0: never synced
           MakeQuickToken(1, 0, print, now),    // no window
           MakeQuickToken(1, 1, "", now),       // no fingerprint
           MakeQuickToken(1, 1, print, now - kQuickTokenMaxAgeS - 1),
           MakeQuickToken(1, 1, print, now + 61),
           std::string("v1 gen=1 n=4294967296 ts=1800000000 fp=x"),
           std::string("v1 gen=01 n=1 ts=1800000000 fp=x"),
           std::string("v1 gen=1 n=1 ts=1800000000 fp=%zz"),
           std::string("v1 gen=1 gen=1 n=1 ts=1800000000 fp=x"),
           std::string("v1 gen=1 n=1 ts=1800000000 fp=") + std::string(kMaxQuickTokenBytes, 'x'),
           std::string(""),
       }) {
    EXPECT_FALSE(ParseQuickToken(bad, now, &t, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
}

// Durable ops in one SETMETADATA: all written, in order (a later op on the
// same entry wins), or none (one bad op fails the batch before anything is
// sent). Bodies of several messages in one UID FETCH; a gone one is missing.
TEST_F(LocalMailboxTest, DurableBatchAndBodyBatch) {
  Open("batch");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(dovecot_
                    ->Deliver("batch",
                              MakeTestMessage("m" + std::to_string(i), "body " + std::to_string(i)))
                    .ok());
  }
  Loaded l = Load();
  ASSERT_EQ(l.snap.messages.size(), 5u);
  ASSERT_EQ(l.snap.actions.size(), 5u);
  std::vector<Op> ops;
  for (size_t i = 0; i < 5; ++i) {
    Op put;
    put.kind = OpKind::kPutMapping;
    put.local = l.snap.messages[i].id;
    put.remote = 100 + i;
    ops.push_back(put);
    Op del;
    del.kind = OpKind::kDeleteActionEntry;
    del.seq = i + 1;
    ops.push_back(del);
  }
  Op unmap;  // the third mapping goes again, later in the same batch
  unmap.kind = OpKind::kRemoveMapping;
  unmap.local = l.snap.messages[2].id;
  ops.push_back(unmap);
  Op gen;
  gen.kind = OpKind::kSetGeneration;
  gen.generation = 77;
  ops.push_back(gen);

  auto apply = [&](const std::vector<Op>& batch) {
    Status st;
    bool done = false;
    box_->ApplyDurable(batch, [&](const Status& s, const LocalId&) {
      st = s;
      done = true;
    });
    EXPECT_TRUE(RunUntil(base_.get(), [&] { return done; }));
    return st;
  };
  std::vector<Op> bad = ops;
  Op unknown;
  unknown.kind = OpKind::kDeleteActionEntry;
  unknown.seq = 99;  // not from the last snapshot
  bad.insert(bad.begin() + 3, unknown);
  EXPECT_TRUE(apply(bad).IsInvalidArgument());
  EXPECT_EQ(Load().snap.actions.size(), 5u);  // nothing written
  l = Load();

  ASSERT_TRUE(apply(ops).ok());
  Loaded after = Load();
  EXPECT_TRUE(after.snap.actions.empty());
  EXPECT_EQ(after.snap.generation, 77u);
  for (size_t i = 0; i < 5; ++i) {
    const engine::RemoteId* r = after.snap.map.FindRemote(l.snap.messages[i].id);
    if (i == 2) {
      EXPECT_EQ(r, nullptr);
    } else {
      ASSERT_NE(r, nullptr) << i;
      EXPECT_EQ(*r, 100 + i);
    }
  }

  std::vector<LocalId> ids;
  for (const auto& m : after.snap.messages) ids.push_back(m.id);
  UserSession({"SELECT INBOX", "UID STORE " + std::to_string(ids[1].uid) + " +FLAGS (\\Deleted)",
               "EXPUNGE"});
  std::map<LocalId, std::string> bodies;
  bool done = false;
  Status st;
  box_->FetchBodies(ids, [&](const Status& s, std::map<LocalId, std::string> b) {
    st = s;
    bodies = std::move(b);
    done = true;
  });
  ASSERT_TRUE(RunUntil(base_.get(), [&] { return done; }));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(bodies.size(), 4u);
  EXPECT_EQ(bodies.count(ids[1]), 0u);  // expunged: missing, not an error
  for (const auto& [id, body] : bodies) {
    EXPECT_NE(body.find("body "), std::string::npos) << engine::ToString(id);
    EXPECT_GT(box_->ListedSize(id), 0u);
  }
}

TEST_F(LocalMailboxTest, RestoreEntryMovesMappingBackAndSentEntryCarriesMeta) {
  Open("restore");
  ASSERT_TRUE(dovecot_->Deliver("restore", MakeTestMessage("r", "r", "x@x", "<r@x>")).ok());
  Loaded l = Load();
  ASSERT_EQ(l.snap.messages.size(), 1u);
  LocalId orig = l.snap.messages[0].id;
  Op put;
  put.kind = OpKind::kPutMapping;
  put.local = orig;
  put.remote = 42;
  ASSERT_TRUE(Apply(put).status.ok());
  // Trash then restore by the user, and a message filed in Sent.
  UserSession({"SELECT INBOX", "UID MOVE 1 Trash", "SELECT Trash", "UID STORE 1 +FLAGS (\\Seen)",
               "UID MOVE 1 INBOX"});
  {
    ImapTestClient imap;
    ASSERT_TRUE(dovecot_->Login("restore", &imap).ok());
    testing::ImapResponse r;
    ASSERT_TRUE(
        imap.Append("Sent", "(\\Seen)", MakeTestMessage("s", "s", "y@x", "<s@x>"), &r).ok());
    ASSERT_TRUE(r.ok()) << r.tagged;
  }
  l = Load();
  std::vector<ActionKind> kinds;
  for (const auto& a : l.snap.actions) kinds.push_back(a.kind);
  ASSERT_EQ(kinds.size(), 4u);
  EXPECT_EQ(kinds[1], ActionKind::kMoveToTrash);
  EXPECT_EQ(kinds[2], ActionKind::kRestoreFromTrash);
  EXPECT_EQ(kinds[3], ActionKind::kFiledAsSent);
  const auto& restore = l.snap.actions[2];
  EXPECT_EQ(restore.local.mailbox, "INBOX");
  EXPECT_NE(restore.local, orig);
  EXPECT_EQ(restore.meta.state, MessageState::kRead);  // \Seen set while in Trash
  // Chained moves: INBOX -> Trash -> INBOX, one mapping at the end.
  EXPECT_EQ(l.snap.map.size(), 1u);
  ASSERT_NE(l.snap.map.FindRemote(restore.local), nullptr);
  EXPECT_EQ(*l.snap.map.FindRemote(restore.local), 42u);
  const auto& sent = l.snap.actions[3];
  EXPECT_EQ(sent.local.mailbox, "Sent");
  EXPECT_EQ(sent.meta.match_key, "<s@x>");
  // Sent messages are not part of the synced mailbox.
  for (const auto& m : l.snap.messages) EXPECT_NE(m.id.mailbox, "Sent");
  int map_attrs = 0;
  for (const auto& [k, v] : Attributes()) {
    if (k.find("/map/") != std::string::npos) ++map_attrs;
  }
  EXPECT_EQ(map_attrs, 1);
}

// --- Submission -----------------------------------------------------------------

std::string Composed(const std::string& id) {
  return "From: me <submit@example.test>\r\n"
         "To: \"Doe, Jane\" <jane@example.test>, bob@example.test\r\n"
         "Cc: team: carol@example.test, <dave@example.test>;\r\n"
         "Bcc: secret@example.test\r\n"
         "Subject: composed\r\n"
         "Message-ID: " +
         id +
         "\r\n"
         "\r\n"
         "Body line\r\n"
         ".leading dot\r\n";
}

TEST(ExtractRecipients, AddressListsGroupsBccAndBounds) {
  std::vector<std::string> r;
  std::string data;
  ASSERT_TRUE(ExtractRecipients(Composed("<c@x>"), &r, &data).ok());
  EXPECT_EQ(r,
            (std::vector<std::string>{"jane@example.test", "bob@example.test", "carol@example.test",
                                      "dave@example.test", "secret@example.test"}));
  EXPECT_EQ(data.find("Bcc"), std::string::npos);
  EXPECT_EQ(data.find("secret"), std::string::npos);
  EXPECT_NE(data.find("Cc: team:"), std::string::npos);
  EXPECT_NE(data.find(".leading dot"), std::string::npos);

  // Folded Bcc is removed whole; duplicates collapse; comments ignored.
  std::string folded = "To: a@x (Al), a@x\r\nBCC: b@x,\r\n c@x\r\nSubject: s\r\n\r\nbody\r\n";
  ASSERT_TRUE(ExtractRecipients(folded, &r, &data).ok());
  EXPECT_EQ(r, (std::vector<std::string>{"a@x", "b@x", "c@x"}));
  EXPECT_EQ(data, "To: a@x (Al), a@x\r\nSubject: s\r\n\r\nbody\r\n");

  EXPECT_TRUE(ExtractRecipients("Subject: none\r\n\r\nx", &r, &data).IsInvalidArgument());
  EXPECT_TRUE(ExtractRecipients("To: <a@x\r\n\r\nx", &r, &data).IsInvalidArgument());
  EXPECT_TRUE(ExtractRecipients("To: a@x\r\nRCPT TO:<e@v>\r\n\r\n", &r, &data).ok());
  EXPECT_EQ(r.size(), 1u);
  EXPECT_TRUE(ExtractRecipients("To: <a@x>\r\n\r\n", &r, &data).ok());
  EXPECT_TRUE(ExtractRecipients("To: <a b@x>\r\n\r\n", &r, &data).IsInvalidArgument());
  std::string many = "To: ";
  for (int i = 0; i < 101; ++i) many += (i ? ", u" : "u") + std::to_string(i) + "@x";
  many += "\r\n\r\n";
  EXPECT_TRUE(ExtractRecipients(many, &r, &data).IsInvalidArgument());
}

class SubmitTest : public LocalMailboxTest {
 protected:
  std::string Script(const std::string& body) {
    std::string path = tmp_.Sub("sendmail");
    EXPECT_TRUE(testing::WriteFile(path, "#!/bin/sh\n" + body, 0755).ok());
    return path;
  }
  Op SubmitOp(engine::RemoteId id) {
    Op op;
    op.kind = OpKind::kSubmitMessage;
    op.message.id = id;
    op.message.meta.match_key = "<sub" + std::to_string(id) + "@x>";
    op.message.meta.date = 1763800000;
    op.message.meta.state = MessageState::kRead;
    return op;
  }
  int SentCount(const std::string& message_id) {
    std::string t = UserSession({"SELECT Sent", "UID SEARCH HEADER Message-ID " + message_id});
    size_t p = t.find("SEARCH");
    if (p == std::string::npos) return 0;
    std::string rest = t.substr(p + 6);
    return static_cast<int>(std::count(rest.begin(), rest.end(), ' '));
  }
};

TEST_F(SubmitTest, SendmailOnceThenFiledInSentOnce) {
  MailSubmitterOptions o;
  o.sendmail_path =
      Script("printf '%s\\n' \"$@\" > " + tmp_.Sub("args") + "\ncat > " + tmp_.Sub("stdin") + "\n");
  Open("submit", o, true);
  const std::string msg = Composed("<sub1@x>");
  Applied a = Apply(SubmitOp(1), msg);
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  std::string args, in;
  ASSERT_TRUE(testing::ReadFile(tmp_.Sub("args"), &args).ok());
  // The envelope sender is the From address the server wrote.
  EXPECT_EQ(args, "-i\n-t\n-f\nsubmit@example.test\n");
  ASSERT_TRUE(testing::ReadFile(tmp_.Sub("stdin"), &in).ok());
  EXPECT_NE(in.find("Subject: composed\n"), std::string::npos) << in;
  EXPECT_NE(in.find("Bcc: secret@example.test\n"), std::string::npos);  // sendmail -t drops it
  EXPECT_EQ(in.find('\r'), std::string::npos);
  auto attrs = Attributes();
  ASSERT_EQ(attrs.count(std::string(kRoot) + "/submitted/1"), 1u);
  EXPECT_EQ(attrs[std::string(kRoot) + "/submitted/1"].rfind("v1 ts=", 0), 0u);
  EXPECT_EQ(SentCount("<sub1@x>"), 1);

  // A re-run (crash before the ack): not submitted again, not filed twice.
  ASSERT_EQ(unlink(tmp_.Sub("args").c_str()), 0);
  a = Apply(SubmitOp(1), msg);
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  EXPECT_FALSE(testing::ReadFile(tmp_.Sub("args"), &args).ok());
  EXPECT_EQ(SentCount("<sub1@x>"), 1);

  // kFileInSent on its own, twice.
  Op f = SubmitOp(2);
  f.kind = OpKind::kFileInSent;
  ASSERT_TRUE(Apply(f, Composed("<filed@x>")).status.ok());
  ASSERT_TRUE(Apply(f, Composed("<filed@x>")).status.ok());
  EXPECT_EQ(SentCount("<filed@x>"), 1);
  // Filing in Sent records no action list entry for the agent's own change.
  EXPECT_TRUE(Load().snap.actions.empty());
}

TEST_F(SubmitTest, FailedSubmissionLeavesNoTraceAndNamesTheCause) {
  MailSubmitterOptions o;
  o.sendmail_path = Script("cat >/dev/null\necho 'relay says no' >&2\necho more >&2\nexit 3\n");
  Open("subfail", o, true);
  Applied a = Apply(SubmitOp(7), Composed("<fail@x>"));
  ASSERT_FALSE(a.status.ok());
  EXPECT_NE(a.status.message().find("relay says no"), std::string::npos) << a.status.ToString();
  EXPECT_NE(a.status.message().find("status 3"), std::string::npos) << a.status.ToString();
  EXPECT_EQ(a.status.message().find("more"), std::string::npos) << a.status.ToString();
  EXPECT_EQ(Attributes().count(std::string(kRoot) + "/submitted/7"), 0u);
  EXPECT_EQ(SentCount("<fail@x>"), 0);

  // Without a submitter the op fails and nothing is recorded either.
  box_ = std::make_unique<LocalMailbox>(client_.get(), "subfail", LocalMailboxOptions(), nullptr);
  a = Apply(SubmitOp(8), Composed("<fail2@x>"));
  EXPECT_FALSE(a.status.ok());
  EXPECT_EQ(Attributes().count(std::string(kRoot) + "/submitted/8"), 0u);
}

TEST_F(SubmitTest, SendmailThatHangsIsKilledAtTheDeadline) {
  MailSubmitterOptions o;
  o.sendmail_path = Script("exec sleep 30\n");
  o.timeout_ms = 300;
  MailSubmitter sub(base_.get(), o);
  bool done = false;
  Status st;
  auto start = std::chrono::steady_clock::now();
  sub.Submit("timeout", Composed("<slow@x>"), [&](const Status& s) {
    st = s;
    done = true;
  });
  ASSERT_TRUE(RunUntil(
      base_.get(), [&] { return done; }, milliseconds(10000)));
  EXPECT_TRUE(st.IsTimeout()) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
}

TEST_F(SubmitTest, SubmissionHostGetsEveryRecipientAndNoBcc) {
  uint16_t port = testing::FreeLoopbackPort();
  testing::Process sink;
  ASSERT_TRUE(sink.Start({"/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l",
                          "127.0.0.1:" + std::to_string(port), "-c", "aiosmtpd.handlers.Mailbox",
                          tmp_.Sub("maildir")},
                         tmp_.Sub("smtp.log"))
                  .ok());
  ASSERT_TRUE(testing::WaitFor([&] {
    testing::LineSocket probe;
    return probe.Connect("127.0.0.1", port, 1000).ok();
  }));
  MailSubmitterOptions o;
  o.submission_host = "127.0.0.1:" + std::to_string(port);
  o.sendmail_path = "/nonexistent";
  Open("smtp", o, true);
  Applied a = Apply(SubmitOp(3), Composed("<smtp@x>"));
  ASSERT_TRUE(a.status.ok()) << a.status.ToString();
  std::string text;
  ASSERT_TRUE(testing::WaitFor([&] {
    for (const char* sub : {"/maildir/new", "/maildir/cur"}) {
      DIR* dir = opendir((tmp_.path() + sub).c_str());
      if (!dir) continue;
      while (dirent* e = readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        (void)testing::ReadFile(tmp_.path() + sub + "/" + e->d_name, &text);
      }
      closedir(dir);
    }
    return !text.empty();
  }));
  EXPECT_NE(text.find("X-MailFrom: submit@example.test"), std::string::npos) << text;
  for (const char* rcpt : {"jane@example.test", "bob@example.test", "carol@example.test",
                           "dave@example.test", "secret@example.test"}) {
    size_t rc = text.find("X-RcptTo:");
    ASSERT_NE(rc, std::string::npos) << text;
    EXPECT_NE(text.find(rcpt, rc), std::string::npos) << rcpt << "\n" << text;
  }
  EXPECT_EQ(text.find("Bcc:"), std::string::npos) << text;
  EXPECT_NE(text.find("\n.leading dot"), std::string::npos) << text;  // dot-unstuffed
  EXPECT_EQ(SentCount("<smtp@x>"), 1);
  EXPECT_EQ(Attributes().count(std::string(kRoot) + "/submitted/3"), 1u);
  sink.Stop();

  // The relay gone: the failure is reported, nothing recorded.
  Applied b = Apply(SubmitOp(4), Composed("<smtp2@x>"));
  EXPECT_FALSE(b.status.ok());
  EXPECT_EQ(Attributes().count(std::string(kRoot) + "/submitted/4"), 0u);
  EXPECT_EQ(SentCount("<smtp2@x>"), 0);
}

}  // namespace
}  // namespace mobilesync::agent
