// End to end: Dovecot with the plugin, mobilesync-server, mobilesync-agent
// and the MTA stand-in, all real processes on loopback (MobilesyncSystem).
//
// E2eFixture.*  the system itself: everything starts, the agent shakes hands
//               with the server, mobilesyncctl works, the trigger-mail path
//               reaches the agent, processes survive kill -9 and restart.
// E2eSync.*     two-way sync scenarios, asserting what a user sees on both
//               sides (device list over the device API, IMAP). They need the
//               sync engine in the agent: they run when the agent knows
//               `sendmail_path` (it arrives with the engine) or when
//               MS_E2E_SYNC=1, and are skipped otherwise (MS_E2E_SYNC=0
//               always skips). Run them:
//                 MS_E2E_SYNC=1 ./tests/integration/e2e_sync_test --gtest_filter='E2e*'
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>

#include "harness/system_fixture.h"

namespace mobilesync::testing {
namespace {

constexpr milliseconds kSyncDeadline(20000);
constexpr milliseconds kPushDeadline(5000);

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

class E2eBase : public ::testing::Test {
 protected:
  void StartSystem(const SystemOptions& o = {}) {
    Status s = sys_.Start(o);
    ASSERT_TRUE(s.ok()) << s.ToString() << sys_.Logs();
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "system dir " << sys_.dir() << sys_.Logs() << "\n";
  }

  // Device state of `subject` in `user`'s window ("" when absent).
  std::string DeviceState(const std::string& user, const std::string& subject) {
    DeviceMessage m;
    return sys_.DeviceFind(user, subject, &m) ? m.state : "";
  }
  size_t DeviceCount(const std::string& user, const std::string& subject) {
    std::vector<DeviceMessage> list;
    if (!sys_.DeviceList(user, &list).ok()) return 0;
    size_t n = 0;
    for (const auto& m : list) n += m.subject == subject;
    return n;
  }
  size_t ImapCount(const std::string& user, const std::string& box, const std::string& subject) {
    std::vector<ImapMessage> list;
    if (!sys_.ImapList(user, box, &list).ok()) return 0;
    size_t n = 0;
    for (const auto& m : list) n += m.subject == subject;
    return n;
  }
  // A forced, waited-for session, then polling for the visible outcome
  // (the session that --wait waited for may be followed by the one that
  // carries the change, e.g. when the change's poke arrived mid-session).
  // Use as ASSERT_TRUE(SyncUntil(...)) << what.
  bool SyncUntil(const std::string& user, const std::function<bool()>& visible) {
    Status s = sys_.SyncWait(user);
    if (!s.ok()) ADD_FAILURE() << s.ToString();
    return WaitFor(
        [&] {
          if (visible()) return true;
          (void)sys_.SyncWait(user);
          return visible();
        },
        kSyncDeadline);
  }

  MobilesyncSystem sys_;
};

// ------------------------------------------------------------ the fixture

class E2eFixture : public E2eBase {};

TEST_F(E2eFixture, StartsAndHandshakes) {
  StartSystem();
  EXPECT_TRUE(sys_.agent_running());
  EXPECT_TRUE(sys_.server_running());
  EXPECT_TRUE(sys_.dovecot().running());
  // The agent authenticated with its deployment token, on both sides' logs.
  EXPECT_NE(sys_.AgentLog().find("remote: handshake done"), std::string::npos) << sys_.Logs();
  EXPECT_TRUE(WaitFor([&] {
    return sys_.ServerLog().find(": authenticated (window") != std::string::npos;
  })) << sys_.ServerLog();
  EXPECT_TRUE(WaitFor([&] { return sys_.AgentConnected(); }));

  CommandResult r = sys_.Ctl({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("connection: connected"), std::string::npos) << r.output;
  r = sys_.Ctl({"--json", "users"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"user\":\"alice\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"user\":\"bob\""), std::string::npos) << r.output;
  r = sys_.Ctl({"sync", "alice", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("user alice: ok"), std::string::npos) << r.output;

  // The device side: each device sees its own (empty) window with its N.
  DeviceResult d = sys_.Device("alice", {"list"});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  ASSERT_TRUE(d.json.is_object()) << d.output;
  EXPECT_EQ(d.json.value("window_size", 0), 6) << d.output;
  d = sys_.Device("bob", {"list"});
  EXPECT_EQ(d.exit_code, 0) << d.output;

  // Dovecot: the user logs in, Trash and Sent exist.
  std::vector<ImapMessage> msgs;
  EXPECT_TRUE(sys_.ImapList("alice", "Trash", &msgs).ok());
  EXPECT_TRUE(sys_.ImapList("alice", "Sent", &msgs).ok());
}

// The plugin's pokes reach the real agent through the socket the fixture
// configured (as the mail user): a delivery starts a session.
TEST_F(E2eFixture, DeliveryPokesTheAgent) {
  StartSystem();
  // Idle first: a poke that arrives while the enable's session is queued is
  // served (and named) by that session.
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  const size_t before = Count(sys_.AgentLog(), "user=alice: session started (local change)");
  ASSERT_TRUE(sys_.Deliver("alice", "poke me").ok());
  EXPECT_TRUE(WaitFor(
      [&] { return Count(sys_.AgentLog(), "user=alice: session started (local change)") > before; },
      kPushDeadline))
      << sys_.Logs();
  EXPECT_EQ(sys_.DovecotLog().find("mobilesync: agent not reachable"), std::string::npos)
      << sys_.DovecotLog();
}

// Trigger mail: with no agent connected, the device's sync-now makes the
// server mail a trigger through the MTA stand-in; Dovecot's LMTP swallows it
// and the plugin asks the agent for a sync.
TEST_F(E2eFixture, TriggerMailReachesTheAgent) {
  SystemOptions o;
  o.reconnect_min = "2m";  // stays offline after the server restart
  o.reconnect_max = "5m";
  StartSystem(o);
  // Let the first sessions end: an operator's session that is still
  // running or queued when the server goes would reconnect at once.
  ASSERT_TRUE(WaitFor([&] {
    CommandResult r = sys_.Ctl({"--json", "status"});
    return r.exit_code == 0 && r.output.find("\"running\":true") == std::string::npos;
  }));
  sys_.KillServer();
  ASSERT_TRUE(sys_.RestartServer().ok());
  ASSERT_TRUE(WaitFor([&] { return !sys_.AgentConnected(); }));
  const size_t before = Count(sys_.AgentLog(), "user=alice: session started (trigger message)");

  DeviceResult d = sys_.Device("alice", {"sync-now"});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(d.json.value("via", std::string()), "trigger-mail") << d.output;
  EXPECT_TRUE(WaitFor([&] {
    return sys_.MtaLog().find("to=alice@example.test local=alice") != std::string::npos;
  })) << sys_.Logs();
  EXPECT_TRUE(WaitFor(
      [&] {
        return Count(sys_.AgentLog(), "user=alice: session started (trigger message)") > before;
      },
      kPushDeadline))
      << sys_.Logs();
  // Swallowed: alice never sees it.
  std::vector<ImapMessage> inbox;
  ASSERT_TRUE(sys_.ImapList("alice", "INBOX", &inbox).ok());
  EXPECT_TRUE(inbox.empty()) << inbox.size() << " message(s), first: " << inbox[0].subject;
}

// Kill -9 and restart of each process on the same files and ports.
TEST_F(E2eFixture, EachProcessRestartsAfterKill) {
  StartSystem();
  size_t offset = sys_.AgentLog().size();
  sys_.KillServer();
  ASSERT_TRUE(sys_.RestartServer().ok());
  EXPECT_TRUE(sys_.WaitForHandshake(offset).ok()) << "agent did not reconnect" << sys_.Logs();

  sys_.KillAgent();
  EXPECT_FALSE(sys_.agent_running());
  ASSERT_TRUE(sys_.RestartAgent().ok());
  // The registry survived: the users are still enabled.
  CommandResult r = sys_.Ctl({"--json", "users"});
  EXPECT_NE(r.output.find("\"user\":\"alice\""), std::string::npos) << r.output;

  sys_.KillDovecot();
  EXPECT_FALSE(sys_.dovecot().running());
  ASSERT_TRUE(sys_.RestartDovecot().ok());
  ASSERT_TRUE(sys_.Deliver("alice", "after restart").ok());
  ImapMessage m;
  EXPECT_TRUE(sys_.ImapFind("alice", "INBOX", "after restart", &m));
  EXPECT_TRUE(sys_.SyncWait("alice").ok());
}

// ----------------------------------------------------------- the scenarios

class E2eSync : public E2eBase {
 protected:
  void SetUp() override {
    const char* env = getenv("MS_E2E_SYNC");
    const std::string want = env ? env : "";
    if (want == "0") GTEST_SKIP() << "MS_E2E_SYNC=0";
    StartSystem(Options());
    if (want != "1" && !sys_.sendmail_configured()) {
      GTEST_SKIP() << "the agent has no sync engine yet (no sendmail_path); MS_E2E_SYNC=1 runs "
                      "these anyway";
    }
  }
  virtual SystemOptions Options() { return SystemOptions(); }

  DeviceMessage MustFindOnDevice(const std::string& user, const std::string& subject) {
    DeviceMessage m;
    EXPECT_TRUE(sys_.DeviceFind(user, subject, &m)) << subject << " not on " << user << "'s device";
    return m;
  }
};

TEST_F(E2eSync, DeliveryAppearsOnTheDevice) {
  ASSERT_TRUE(sys_.Deliver("alice", "hello device").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "hello device") == 1; }))
      << "delivery not on the device";
  DeviceMessage m = MustFindOnDevice("alice", "hello device");
  EXPECT_EQ(m.state, "unread");
  EXPECT_GT(m.id, 0u);
  DeviceResult d = sys_.Device("alice", {"show", std::to_string(m.id)});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_NE(d.json.value("body", std::string()).find("Subject: hello device"), std::string::npos)
      << d.output;
  // Still there locally, still unread; one session more changes nothing.
  ImapMessage im;
  ASSERT_TRUE(sys_.ImapFind("alice", "INBOX", "hello device", &im));
  EXPECT_FALSE(im.seen());
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  EXPECT_EQ(DeviceCount("alice", "hello device"), 1u);
  EXPECT_EQ(ImapCount("alice", "INBOX", "hello device"), 1u);
}

// Push: after the first sync, a delivery reaches the device through the
// plugin's poke alone, without anyone asking for a sync.
TEST_F(E2eSync, DeliveryIsPushedByThePokeAlone) {
  ASSERT_TRUE(sys_.SyncWait("alice").ok());  // the initial sync
  ASSERT_TRUE(sys_.Deliver("alice", "pushed").ok());
  EXPECT_TRUE(WaitFor([&] { return DeviceCount("alice", "pushed") == 1; }, kPushDeadline))
      << "not on the device within 5 s of delivery";
}

TEST_F(E2eSync, ReadOnTheDeviceBecomesSeenInImap) {
  ASSERT_TRUE(sys_.Deliver("alice", "read me").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "read me") == 1; }))
      << "not on the device";
  DeviceMessage m = MustFindOnDevice("alice", "read me");
  DeviceResult d = sys_.Device("alice", {"read", std::to_string(m.id)});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(d.json.value("state", std::string()), "read");
  ASSERT_TRUE(SyncUntil("alice", [&] {
    ImapMessage im;
    return sys_.ImapFind("alice", "INBOX", "read me", &im) && im.seen();
  })) << "device read did not become \\Seen";
  d = sys_.Device("alice", {"unread", std::to_string(m.id)});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  ASSERT_TRUE(SyncUntil("alice", [&] {
    ImapMessage im;
    return sys_.ImapFind("alice", "INBOX", "read me", &im) && !im.seen();
  })) << "device unread did not clear \\Seen";
}

TEST_F(E2eSync, SeenInImapShowsReadOnTheDevice) {
  ASSERT_TRUE(sys_.Deliver("alice", "seen locally").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "seen locally") == "unread"; }))
      << "not on the device";
  ImapMessage im;
  ASSERT_TRUE(sys_.ImapFind("alice", "INBOX", "seen locally", &im));
  ASSERT_TRUE(sys_.ImapSetSeen("alice", "INBOX", im.uid, true).ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "seen locally") == "read"; }))
      << "\\Seen did not show as read";
  ASSERT_TRUE(sys_.ImapSetSeen("alice", "INBOX", im.uid, false).ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "seen locally") == "unread"; }))
      << "-\\Seen did not show as unread";
}

// A move to Trash in IMAP: the device shows the message in Trash (state
// "trash", docs/device-api.md), no longer in its inbox; a move back
// restores it.
TEST_F(E2eSync, MoveToTrashInImapLeavesTheDeviceInbox) {
  ASSERT_TRUE(sys_.Deliver("alice", "trash me").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "trash me") == "unread"; }))
      << "not on the device";
  ImapMessage im;
  ASSERT_TRUE(sys_.ImapFind("alice", "INBOX", "trash me", &im));
  ASSERT_TRUE(sys_.ImapMove("alice", "INBOX", im.uid, "Trash").ok());
  auto out_of_inbox = [&] {
    std::string st = DeviceState("alice", "trash me");
    return st == "trash" || st.empty();
  };
  ASSERT_TRUE(SyncUntil("alice", out_of_inbox))
      << "still in the device's inbox after a move to Trash";
  EXPECT_EQ(DeviceState("alice", "trash me"), "trash") << "expected in the device's Trash";
  ASSERT_TRUE(sys_.ImapFind("alice", "Trash", "trash me", &im));
  ASSERT_TRUE(sys_.ImapMove("alice", "Trash", im.uid, "INBOX").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "trash me") == "unread"; }))
      << "restore from Trash in IMAP not shown on the device";
  EXPECT_EQ(DeviceCount("alice", "trash me"), 1u);
}

TEST_F(E2eSync, DeviceTrashRestoreDestroyReachImap) {
  ASSERT_TRUE(sys_.Deliver("alice", "keep me").ok());
  ASSERT_TRUE(sys_.Deliver("alice", "destroy me").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return DeviceCount("alice", "keep me") == 1 && DeviceCount("alice", "destroy me") == 1;
  })) << "not on the device";
  DeviceMessage keep = MustFindOnDevice("alice", "keep me");
  DeviceMessage destroy = MustFindOnDevice("alice", "destroy me");

  DeviceResult d = sys_.Device("alice", {"trash", std::to_string(keep.id)});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return ImapCount("alice", "INBOX", "keep me") == 0 &&
           ImapCount("alice", "Trash", "keep me") == 1;
  })) << "device trash not replayed in IMAP";

  d = sys_.Device("alice", {"restore", std::to_string(keep.id)});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return ImapCount("alice", "INBOX", "keep me") == 1 &&
           ImapCount("alice", "Trash", "keep me") == 0;
  })) << "device restore not replayed in IMAP";
  EXPECT_NE(DeviceState("alice", "keep me"), "trash");

  d = sys_.Device("alice", {"destroy", std::to_string(destroy.id)});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(d.json.value("state", std::string()), "destroyed");
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return ImapCount("alice", "INBOX", "destroy me") == 0 &&
           ImapCount("alice", "Trash", "destroy me") == 0;
  })) << "device destroy not replayed in IMAP";
  EXPECT_EQ(DeviceCount("alice", "destroy me"), 0u);
  EXPECT_EQ(ImapCount("alice", "INBOX", "keep me"), 1u);
}

// IMAP side: unread, restore from Trash and expunge reach the device.
TEST_F(E2eSync, ImapUnreadRestoreAndExpungeReachTheDevice) {
  ASSERT_TRUE(sys_.Deliver("alice", "round trip").ok());
  ASSERT_TRUE(sys_.Deliver("alice", "expunge me").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return DeviceCount("alice", "round trip") == 1 && DeviceCount("alice", "expunge me") == 1;
  })) << "not on the device";
  ImapMessage m;
  ASSERT_TRUE(sys_.ImapFind("alice", "INBOX", "round trip", &m));
  ASSERT_TRUE(sys_.ImapSetSeen("alice", "INBOX", m.uid, true).ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "round trip") == "read"; }))
      << "read";
  ASSERT_TRUE(sys_.ImapSetSeen("alice", "INBOX", m.uid, false).ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "round trip") == "unread"; }))
      << "unread";
  ASSERT_TRUE(sys_.ImapMove("alice", "INBOX", m.uid, "Trash").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceState("alice", "round trip") == "trash"; }))
      << "trash";
  ASSERT_TRUE(sys_.ImapFind("alice", "Trash", "round trip", &m));
  ASSERT_TRUE(sys_.ImapMove("alice", "Trash", m.uid, "INBOX").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] {
    std::string st = DeviceState("alice", "round trip");
    return st == "unread" || st == "read";
  })) << "restore from Trash in IMAP not on the device";
  EXPECT_EQ(DeviceCount("alice", "round trip"), 1u);

  ASSERT_TRUE(sys_.ImapFind("alice", "INBOX", "expunge me", &m));
  ASSERT_TRUE(sys_.ImapExpunge("alice", "INBOX", m.uid).ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "expunge me") == 0; }))
      << "expunge in IMAP not on the device";
  EXPECT_EQ(ImapCount("alice", "INBOX", "round trip"), 1u);
}

// Both sides change one message between two syncs (the agent is down):
// the higher precedence wins on both sides (destroyed > trash > read > unread).
TEST_F(E2eSync, ConflictIsDecidedByPrecedence) {
  ASSERT_TRUE(sys_.Deliver("alice", "contested").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "contested") == 1; }))
      << "not on the device";
  DeviceMessage dm = MustFindOnDevice("alice", "contested");
  ImapMessage m;
  ASSERT_TRUE(sys_.ImapFind("alice", "INBOX", "contested", &m));
  ASSERT_EQ(sys_.StopAgent(), 0);
  ASSERT_TRUE(sys_.ImapSetSeen("alice", "INBOX", m.uid, true).ok());        // read here...
  DeviceResult d = sys_.Device("alice", {"trash", std::to_string(dm.id)});  // ...trash there
  ASSERT_EQ(d.exit_code, 0) << d.output;
  ASSERT_TRUE(sys_.StartAgent().ok());
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return ImapCount("alice", "Trash", "contested") == 1 &&
           ImapCount("alice", "INBOX", "contested") == 0 &&
           DeviceState("alice", "contested") == "trash";
  })) << "trash (higher precedence) did not win on both sides";
  EXPECT_EQ(DeviceCount("alice", "contested"), 1u);
}

// INBOX gets a new UIDVALIDITY (as if recreated): the next sync is a clean
// initial sync, and nothing is duplicated on either side.
TEST_F(E2eSync, UidvalidityChangeForcesAnInitialSyncWithoutDuplicates) {
  for (const char* s : {"uv one", "uv two", "uv three"}) ASSERT_TRUE(sys_.Deliver("alice", s).ok());
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return DeviceCount("alice", "uv one") == 1 && DeviceCount("alice", "uv three") == 1;
  })) << "not on the device";
  CommandResult r;
  ASSERT_TRUE(
      sys_.dovecot()
          .Doveadm({"mailbox", "update", "-u", "alice", "--uid-validity", "12345", "INBOX"}, &r)
          .ok())
      << r.output;
  const size_t before = Count(sys_.AgentLog(), "initial sync");
  ASSERT_TRUE(SyncUntil("alice", [&] { return Count(sys_.AgentLog(), "initial sync") > before; }))
      << "no initial sync after the UIDVALIDITY change";
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  for (const char* s : {"uv one", "uv two", "uv three"}) {
    EXPECT_EQ(DeviceCount("alice", s), 1u) << s;
    EXPECT_EQ(ImapCount("alice", "INBOX", s), 1u) << s;
  }
}

// A message destroyed on the device while the next session must be an
// initial sync (here: the agent's generation is gone; in the field: the
// reply to an update session's END_SESSION was lost after the server
// committed). The comparison alone would copy it back from Dovecot; the
// server's list names it as destroyed, and the agent destroys it.
TEST_F(E2eSync, DeviceDestroyPendingAtAnInitialSyncIsCarriedOut) {
  for (const char* s : {"stays", "destroyed on the device"}) {
    ASSERT_TRUE(sys_.Deliver("alice", s).ok());
  }
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return DeviceCount("alice", "stays") == 1 &&
           DeviceCount("alice", "destroyed on the device") == 1;
  })) << "not on the device";
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  // No session may run between the destroy and the lost generation.
  ASSERT_EQ(sys_.StopAgent(), 0);
  DeviceMessage gone = MustFindOnDevice("alice", "destroyed on the device");
  DeviceResult d = sys_.Device("alice", {"destroy", std::to_string(gone.id)});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  CommandResult r;
  ASSERT_TRUE(sys_.dovecot()
                  .Doveadm({"mailbox", "metadata", "unset", "-u", "alice", "-s", "",
                            "/private/vendor/vendor.mobilesync/generation"},
                           &r)
                  .ok())
      << r.output;
  const size_t initial_before = Count(sys_.ServerLog(), "initial sync begins");
  ASSERT_TRUE(sys_.StartAgent().ok());
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return Count(sys_.ServerLog(), "initial sync begins") > initial_before;
  })) << "no initial sync";
  // The destroy was still in the server's action list when it began.
  const std::string log = sys_.ServerLog();
  const size_t at = log.rfind("initial sync begins");
  EXPECT_EQ(log.substr(at, log.find('\n', at) - at).find(" 0 server actions"), std::string::npos)
      << log.substr(at, 200);
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  EXPECT_EQ(ImapCount("alice", "INBOX", "destroyed on the device"), 0u) << "copied back";
  EXPECT_EQ(ImapCount("alice", "Trash", "destroyed on the device"), 0u);
  EXPECT_EQ(DeviceCount("alice", "destroyed on the device"), 0u) << "copied back to the device";
  EXPECT_EQ(ImapCount("alice", "INBOX", "stays"), 1u);
  EXPECT_EQ(DeviceCount("alice", "stays"), 1u);
}

// Mail composed on the device, sent through the organisation: the agent
// hands it to sendmail_path and files it in Sent.
TEST_F(E2eSync, ComposeViaSyncIsSubmittedAndFiledInSent) {
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  DeviceResult d = sys_.Device(
      "alice",
      {"compose", "--to", "friend@elsewhere.test", "--subject", "from my phone", "--via-sync"},
      "Sent through the organisation.\n");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(d.json.value("via", std::string()), "sync") << d.output;
  EXPECT_EQ(d.json.value("queued", false), true) << d.output;
  ASSERT_TRUE(SyncUntil("alice", [&] {
    return !sys_.Submitted().empty() && ImapCount("alice", "Sent", "from my phone") == 1;
  })) << "not submitted and filed in Sent";
  auto sent = sys_.Submitted();
  ASSERT_EQ(sent.size(), 1u) << "submitted more than once";
  EXPECT_NE(sent[0].log_line.find("from=alice@example.test"), std::string::npos)
      << sent[0].log_line;
  EXPECT_NE(sent[0].log_line.find("to=friend@elsewhere.test"), std::string::npos)
      << sent[0].log_line;
  EXPECT_NE(sent[0].log_line.find("subject=from my phone"), std::string::npos) << sent[0].log_line;
  EXPECT_NE(sent[0].message.find("Sent through the organisation."), std::string::npos);
  // Not in the inbox; another session submits nothing more.
  EXPECT_EQ(ImapCount("alice", "INBOX", "from my phone"), 0u);
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  EXPECT_EQ(sys_.Submitted().size(), 1u);
  EXPECT_EQ(ImapCount("alice", "Sent", "from my phone"), 1u);
}

// New mail reaching the mobile mailbox from outside is inserted locally.
TEST_F(E2eSync, MailArrivingOnTheMobileSideIsInsertedLocally) {
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  uint64_t id = 0;
  Status s = sys_.DeviceInject("alice", "from-mobile", static_cast<int64_t>(time(nullptr)), &id);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(SyncUntil("alice", [&] { return ImapCount("alice", "INBOX", "from-mobile") == 1; }))
      << "mobile-side mail not inserted in IMAP";
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  EXPECT_EQ(ImapCount("alice", "INBOX", "from-mobile"), 1u) << "inserted twice";
  EXPECT_EQ(DeviceCount("alice", "from-mobile"), 1u);
}

// The window: the device holds exactly the N newest, IMAP holds everything.
TEST_F(E2eSync, DeviceHoldsExactlyTheNNewest) {
  const int kN = 6, kTotal = 9;
  for (int i = 1; i <= kTotal; ++i) {
    // One after the other: each delivery is newer than the one before.
    ASSERT_TRUE(sys_.Deliver("alice", "w" + std::to_string(i)).ok());
  }
  auto window_is = [&](int first, int last) {
    std::vector<DeviceMessage> list;
    if (!sys_.DeviceList("alice", &list).ok() || list.size() != static_cast<size_t>(kN))
      return false;
    for (int i = first; i <= last; ++i) {
      if (DeviceCount("alice", "w" + std::to_string(i)) != 1) return false;
    }
    return true;
  };
  ASSERT_TRUE(SyncUntil("alice", [&] { return window_is(kTotal - kN + 1, kTotal); }))
      << "device does not hold exactly the 6 newest";
  std::vector<ImapMessage> inbox;
  ASSERT_TRUE(sys_.ImapList("alice", "INBOX", &inbox).ok());
  EXPECT_EQ(inbox.size(), static_cast<size_t>(kTotal));
  // One more: the oldest of the window leaves it, locally nothing goes.
  ASSERT_TRUE(sys_.Deliver("alice", "w10").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return window_is(kTotal - kN + 2, kTotal + 1); }))
      << "window did not slide";
  EXPECT_EQ(DeviceCount("alice", "w" + std::to_string(kTotal - kN + 1)), 0u);
  ASSERT_TRUE(sys_.ImapList("alice", "INBOX", &inbox).ok());
  EXPECT_EQ(inbox.size(), static_cast<size_t>(kTotal + 1));
}

// A session with nothing to do on either side ends after BEGIN_SESSION
// (the quick check: no id map read, no mailbox listed). It is quick only
// while nothing changed: a message put in the maildir behind Dovecot's
// back (the plugin never saw it) changes INBOX's STATUS and the next
// session is a full one that pulls it; a device change is a server action
// and makes a full session too.
TEST_F(E2eSync, NoChangeSessionEndsEarlyButNoChangeIsMissed) {
  ASSERT_TRUE(sys_.Deliver("alice", "quick one").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "quick one") == 1; }));
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  size_t offset = sys_.AgentLog().size();
  size_t server_offset = sys_.ServerLog().size();
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  std::string log = sys_.AgentLog().substr(offset);
  EXPECT_NE(log.find("user=alice: session finished: ok, nothing to do on either side"),
            std::string::npos)
      << log;
  EXPECT_NE(sys_.ServerLog().substr(server_offset).find("sync completed: nothing to do"),
            std::string::npos)
      << sys_.ServerLog().substr(server_offset);
  // The session before left a quick token: this one read no attribute.
  EXPECT_NE(log.find("user=alice: quick check: unchanged since the quick token"), std::string::npos)
      << log;

  // Behind the plugin's back: straight into the maildir.
  const std::string maildir = sys_.dovecot().dir() + "/home/alice/Maildir";
  struct stat st;
  ASSERT_EQ(stat(maildir.c_str(), &st), 0) << maildir;
  const std::string file = maildir + "/new/1763800000.M1P1.unseen-by-plugin";
  {
    std::ofstream out(file);
    out << "From: someone@example.test\r\nTo: alice@example.test\r\n"
           "Subject: behind the back\r\nMessage-ID: <behind@example.test>\r\n"
           "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nnot seen by the plugin\r\n";
  }
  ASSERT_EQ(chown(file.c_str(), st.st_uid, st.st_gid), 0);
  size_t pending = 1;
  ASSERT_TRUE(sys_.PendingActions("alice", &pending).ok());
  EXPECT_EQ(pending, 0u) << "the plugin recorded it: the test proves nothing";
  offset = sys_.AgentLog().size();
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  EXPECT_EQ(DeviceCount("alice", "behind the back"), 1u)
      << "a session after a change the plugin did not see was taken for a no-change one\n"
      << sys_.AgentLog().substr(offset);

  // A device change: the server holds an action, the session is a full one.
  DeviceMessage m = MustFindOnDevice("alice", "quick one");
  ASSERT_EQ(sys_.Device("alice", {"read", std::to_string(m.id)}).exit_code, 0);
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  ImapMessage im;
  ASSERT_TRUE(sys_.ImapFind("alice", "INBOX", "quick one", &im));
  EXPECT_TRUE(im.seen()) << "a device change waited behind a no-change session";
}

TEST_F(E2eSync, UsersAreIsolated) {
  ASSERT_TRUE(sys_.Deliver("alice", "for alice only").ok());
  ASSERT_TRUE(sys_.Deliver("bob", "for bob only").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "for alice only") == 1; }))
      << "alice";
  ASSERT_TRUE(SyncUntil("bob", [&] { return DeviceCount("bob", "for bob only") == 1; })) << "bob";
  EXPECT_EQ(DeviceCount("alice", "for bob only"), 0u);
  EXPECT_EQ(DeviceCount("bob", "for alice only"), 0u);
  // Bob's device cannot reach alice's message by id.
  DeviceMessage a = MustFindOnDevice("alice", "for alice only");
  // Remote ids are per user: the same number names bob's own message (or
  // nothing), never alice's.
  DeviceResult d = sys_.Device("bob", {"show", std::to_string(a.id)});
  EXPECT_EQ(d.output.find("for alice only"), std::string::npos) << d.output;
  // Mobile-side mail of bob lands in bob's mailbox only.
  uint64_t id = 0;
  ASSERT_TRUE(
      sys_.DeviceInject("bob", "bob-mobile", static_cast<int64_t>(time(nullptr)), &id).ok());
  ASSERT_TRUE(SyncUntil("bob", [&] { return ImapCount("bob", "INBOX", "bob-mobile") == 1; }))
      << "bob's mobile mail";
  ASSERT_TRUE(sys_.SyncWait("alice").ok());
  EXPECT_EQ(ImapCount("alice", "INBOX", "bob-mobile"), 0u);
  EXPECT_EQ(ImapCount("alice", "INBOX", "for bob only"), 0u);
  EXPECT_EQ(ImapCount("bob", "INBOX", "for alice only"), 0u);
}

// Disabled in the agent, then enabled again: nothing lost, nothing doubled.
// (docs/control-protocol.md: a poke for a user the agent does not know
// enables that user, so a delivery while disabled re-enables as "poke".)
TEST_F(E2eSync, DisabledUserIsReenabledAndCatchesUp) {
  ASSERT_TRUE(sys_.Deliver("alice", "before disable").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "before disable") == 1; }))
      << "first sync";
  ASSERT_TRUE(sys_.Disable("alice").ok());
  CommandResult r = sys_.Ctl({"--json", "users"});
  EXPECT_EQ(r.output.find("\"user\":\"alice\""), std::string::npos) << r.output;
  EXPECT_NE(sys_.Ctl({"sync", "alice"}).exit_code, 0);
  // A change on the device while disabled waits on the server.
  DeviceMessage m = MustFindOnDevice("alice", "before disable");
  ASSERT_EQ(sys_.Device("alice", {"read", std::to_string(m.id)}).exit_code, 0);

  ASSERT_TRUE(sys_.Enable("alice").ok());
  ASSERT_TRUE(sys_.Deliver("alice", "after enable").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] {
    ImapMessage im;
    return DeviceCount("alice", "after enable") == 1 &&
           sys_.ImapFind("alice", "INBOX", "before disable", &im) && im.seen();
  })) << "did not catch up after enable";
  EXPECT_EQ(DeviceCount("alice", "before disable"), 1u);
  EXPECT_EQ(ImapCount("alice", "INBOX", "before disable"), 1u);

  // Disabled again, a delivery's poke enables alice (source "poke").
  ASSERT_TRUE(sys_.Disable("alice").ok());
  ASSERT_TRUE(sys_.Deliver("alice", "while disabled").ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        return sys_.Ctl({"--json", "users"})
                   .output.find("\"user\":\"alice\",\"source\":\"poke\"") != std::string::npos;
      },
      kPushDeadline));
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "while disabled") == 1; }))
      << "poke re-enable";
}

// The trigger path end to end: with the agent offline, sync-now mails a
// trigger, and the agent dials out and carries the device's change.
class E2eSyncOffline : public E2eSync {
  SystemOptions Options() override {
    SystemOptions o;
    o.reconnect_min = "2m";
    o.reconnect_max = "5m";
    return o;
  }
};

TEST_F(E2eSyncOffline, TriggerMailStartsASyncWhileTheAgentIsOffline) {
  ASSERT_TRUE(sys_.Deliver("alice", "trigger target").ok());
  ASSERT_TRUE(SyncUntil("alice", [&] { return DeviceCount("alice", "trigger target") == 1; }))
      << "first sync";
  DeviceMessage m = MustFindOnDevice("alice", "trigger target");
  // The server restarts; the agent's backoff keeps it away for a minute.
  sys_.KillServer();
  ASSERT_TRUE(sys_.RestartServer().ok());
  ASSERT_TRUE(WaitFor([&] { return !sys_.AgentConnected(); }));
  ASSERT_EQ(sys_.Device("alice", {"read", std::to_string(m.id)}).exit_code, 0);
  DeviceResult d = sys_.Device("alice", {"sync-now"});
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(d.json.value("via", std::string()), "trigger-mail") << d.output;
  EXPECT_TRUE(WaitFor(
      [&] {
        ImapMessage im;
        return sys_.ImapFind("alice", "INBOX", "trigger target", &im) && im.seen();
      },
      kSyncDeadline))
      << "the trigger did not bring the device's read over";
  EXPECT_EQ(ImapCount("alice", "INBOX", "trigger target"), 1u);
}

}  // namespace
}  // namespace mobilesync::testing
