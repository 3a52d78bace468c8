// SyncDriver: runs one user's sync session. It is the I/O around the
// sans-I/O engine (engine/sync_session.h): the user's Dovecot side through a
// LocalMailbox (IMAP as user*master), the server through a wire session
// (WireProtocol + SessionCodec).
//
// The engine's rule is "carry out the ops in order, persisting each, before
// feeding the next event". The driver keeps two queues: ops to carry out
// and events (a frame from the server, a finished mailbox op, a timer) to
// feed. It carries out ops one at a time; only when none is left does it
// feed the next event. A crash (or kill -9) at any point therefore stops
// after some op, which is what the engine's ordering makes safe.
//
// Ending: an update sync ends with END_SESSION{OK} and the server's reply;
// an initial sync ends at its commit (the engine's kCommit is END_SESSION).
// Any failure (server ERROR, temporary NACK, lost connection, IMAP error,
// time-out) aborts the session: END_SESSION{ABORTED} when the connection
// is still up, and the unacknowledged actions stay queued for next time.
#ifndef MOBILESYNC_SYNC_AGENT_SYNC_DRIVER_H_
#define MOBILESYNC_SYNC_AGENT_SYNC_DRIVER_H_

#include <event2/event.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "common/event_loop.h"
#include "common/status.h"
#include "sync_agent/engine/sync_session.h"
#include "sync_agent/local_mailbox.h"
#include "sync_agent/session_codec.h"
#include "sync_agent/wire_protocol.h"

namespace mobilesync::agent {

class RemoteConnection;

struct SessionResult {
  Status status;
  // Action-list entries left: read at the start, minus those the session
  // deleted (entries recorded meanwhile are not counted); -1: not read.
  int64_t pending_actions = -1;
  bool initial = false;   // an initial sync ran
  uint64_t sent = 0;      // actions sent to the server
  uint64_t received = 0;  // actions received from the server
  // The session ended early on purpose and should run again at once (the
  // server expected an update sync where the agent must do an initial one).
  bool rerun = false;
  // The quick check found nothing to do on either side: the session ended
  // right after BEGIN_SESSION_REPLY, nothing changed.
  bool no_change = false;
  // The quick token for the user's next session (LocalMailbox QuickToken):
  // made when the session ended OK and a quick check at its end found
  // nothing to do, or kept from SyncDriverOptions when it was taken at its
  // word; "" otherwise (the user's old token must then be forgotten).
  std::string quick_token;
};

struct SyncDriverOptions {
  LocalMailboxOptions mailbox;
  engine::SessionOptions engine;
  // How long to wait for the server connection before giving up.
  uint64_t connect_wait_ms = 15000;
  // Without a connection: reconnect at once (someone is waiting: a trigger
  // message, an operator). Otherwise a session fails at once while the
  // connection waits out its backoff, which protects a server that is down.
  bool reconnect_now = false;
  // Try the quick check first (LocalMailbox::LoadQuick): a session with
  // nothing to do on either side then reads neither the id map nor the
  // mailbox's message list.
  bool quick_check = true;
  // The user's quick token from the last session ("" for none).
  std::string quick_token;
};

class SyncDriver : public SessionListener {
 public:
  using Done = std::function<void(SessionResult)>;

  // REQUIRES: every pointer outlives this object (remote may be null);
  // `client` is logged in as `user`.
  SyncDriver(event_base* base, WireProtocol* protocol, RemoteConnection* remote,
             imap::ImapClient* client, MailSubmitter* submitter, std::string user,
             SyncDriverOptions options, Done done);
  ~SyncDriver() override;
  SyncDriver(const SyncDriver&) = delete;
  SyncDriver& operator=(const SyncDriver&) = delete;

  // `done` runs once, from the loop (never from inside Start).
  void Start();

  // SessionListener.
  void OnSessionFrame(wire::Frame&& frame) override;
  void OnSessionLost(const Status& why) override;

 private:
  struct LocalApplied {
    uint64_t tag;
    Status status;
    engine::LocalId new_id;
  };
  struct TimerFired {};
  using Event = std::variant<wire::Frame, LocalApplied, TimerFired>;

  void LoadSnapshot();
  void OnSnapshot(const Status& s, engine::AgentSnapshot snapshot, SnapshotInfo info);
  void EndEarly(const Status& s);
  void WaitForServer();
  void BeginSession();
  void StartEngine();
  void OnProbeReply(const engine::Frame& reply, const SessionCodec::Decoded& d);
  void OnHelloReply(const engine::Frame& f, bool server_kind_update);
  void Pump();
  void Execute(engine::Op op);
  void Feed(Event ev);
  void FeedWire(wire::Frame&& frame);
  void Enqueue(std::vector<engine::Op> ops);
  void SendEngineFrame(const engine::Frame& f, std::string body);
  void SendWire(const wire::Frame& f);
  bool MayPassDurable(const engine::Op& op) const;
  void FlushDurable();
  void SendWithBody(engine::Frame frame);
  void Fail(Status why);
  void MaybeFinish();
  void ArmTimer();
  static void TimerCb(evutil_socket_t, short, void* arg);
  static void DoneCb(evutil_socket_t, short, void* arg);
  static void WaitTimeoutCb(evutil_socket_t, short, void* arg);

  event_base* base_;
  WireProtocol* protocol_;
  RemoteConnection* remote_;
  imap::ImapClient* client_;
  MailSubmitter* submitter_;
  std::string user_;
  SyncDriverOptions options_;
  Done done_;

  std::unique_ptr<LocalMailbox> mailbox_;
  std::unique_ptr<engine::SyncSession> engine_;
  std::unique_ptr<SessionCodec> codec_;
  engine::AgentSnapshot snapshot_;
  uint32_t session_id_ = 0;
  engine::SyncGeneration generation_ = 0;  // persisted agent generation

  // The quick check (Start): while probing_, the session is BEGIN_SESSION
  // only; a reply that shows work is kept in hello_reply_ for the engine.
  QuickCheck quick_;
  bool probing_ = false;
  std::optional<engine::Frame> hello_reply_;
  bool hello_update_ = false;
  static constexpr int64_t kProbeReplyMs = 30000;
  int64_t probe_deadline_ms_ = 0;

  std::deque<engine::Op> ops_;
  std::vector<engine::Op> durable_;  // durable ops not written yet, in order
  // Bodies fetched ahead for INSERTs queued behind the one being sent.
  static constexpr size_t kPrefetchCount = 32;
  static constexpr uint64_t kPrefetchBytes = 8u << 20;
  std::map<engine::LocalId, std::string> prefetched_;
  std::deque<Event> events_;
  bool busy_ = false;          // an asynchronous op is being carried out
  bool sealed_ = false;        // MaybeFinish decided on the quick token
  bool engine_done_ = false;   // the engine emitted kDone OK
  bool end_sent_ = false;      // our END_SESSION{OK} is out
  bool server_ended_ = false;  // the server's END_SESSION arrived
  bool abort_after_ops_ = false;
  bool failed_ = false;
  bool finished_ = false;
  SessionResult result_;

  EventPtr timer_;
  EventPtr done_event_;
  EventPtr wait_timer_;
  int64_t wait_deadline_ms_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_SYNC_DRIVER_H_
