#include "sync_agent/sync_driver.h"

#include <utility>

#include "common/log.h"
#include "sync_agent/remote_connection.h"
#include "sync_agent/scheduler.h"

namespace mobilesync::agent {
namespace {

timeval MsToTimeval(int64_t ms) {
  if (ms < 0) ms = 0;
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

int64_t NowMs() {
  return static_cast<int64_t>(MonotonicMs());
}

constexpr int64_t kWaitPollMs = 50;

bool IsDurableOp(engine::OpKind k) {
  return k == engine::OpKind::kPutMapping || k == engine::OpKind::kRemoveMapping ||
         k == engine::OpKind::kDeleteActionEntry || k == engine::OpKind::kSetGeneration;
}

bool IsMailboxOp(engine::OpKind k) {
  switch (k) {
    case engine::OpKind::kAppendLocal:
    case engine::OpKind::kSetLocalState:
    case engine::OpKind::kDestroyLocal:
    case engine::OpKind::kSubmitMessage:
    case engine::OpKind::kFileInSent: return true;
    default: return false;
  }
}

}  // namespace

SyncDriver::SyncDriver(event_base* base, WireProtocol* protocol, RemoteConnection* remote,
                       imap::ImapClient* client, MailSubmitter* submitter, std::string user,
                       SyncDriverOptions options, Done done)
    : base_(base),
      protocol_(protocol),
      remote_(remote),
      client_(client),
      submitter_(submitter),
      user_(std::move(user)),
      options_(std::move(options)),
      done_(std::move(done)) {
  timer_.reset(evtimer_new(base_, &SyncDriver::TimerCb, this));
  done_event_.reset(evtimer_new(base_, &SyncDriver::DoneCb, this));
  wait_timer_.reset(evtimer_new(base_, &SyncDriver::WaitTimeoutCb, this));
}

SyncDriver::~SyncDriver() {
  *alive_ = false;
  if (session_id_ != 0) protocol_->CloseSession(session_id_);
}

void SyncDriver::Start() {
  mailbox_ = std::make_unique<LocalMailbox>(client_, user_, options_.mailbox, submitter_);
  if (protocol_->handshake_done()) mailbox_->set_server_name(protocol_->server_name());
  if (!options_.quick_check) {
    LoadSnapshot();
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  mailbox_->LoadQuick(options_.quick_token, [this, alive](const Status& s, QuickCheck q) {
    if (alive.expired()) return;
    if (!s.ok()) return EndEarly(s);
    if (!q.unchanged) {
      LogDebug(user_, "quick check: " + q.why + ": full session");
      LoadSnapshot();
      return;
    }
    if (q.from_token) LogDebug(user_, "quick check: unchanged since the quick token");
    result_.quick_token = q.token;  // if the session ends with no change
    quick_ = q;
    probing_ = true;
    generation_ = q.generation;
    result_.pending_actions = 0;
    WaitForServer();
  });
}

void SyncDriver::LoadSnapshot() {
  busy_ = true;  // no event is fed while it loads
  std::weak_ptr<bool> alive = alive_;
  mailbox_->LoadSnapshot(
      [this, alive](const Status& s, engine::AgentSnapshot snapshot, SnapshotInfo info) {
        if (alive.expired()) return;
        busy_ = false;
        OnSnapshot(s, std::move(snapshot), std::move(info));
      });
}

// A failure before any session was opened.
void SyncDriver::EndEarly(const Status& s) {
  if (session_id_ != 0) {
    Fail(s);
    Pump();
    return;
  }
  result_.status = s;
  finished_ = true;
  event_active(done_event_.get(), EV_TIMEOUT, 0);
}

void SyncDriver::OnSnapshot(const Status& s, engine::AgentSnapshot snapshot, SnapshotInfo info) {
  if (finished_ || failed_) {
    Pump();  // the probe session failed meanwhile: finish
    return;
  }
  if (!s.ok()) return EndEarly(s);
  result_.pending_actions = static_cast<int64_t>(info.action_entries);
  if (info.corrupt_entries != 0) {
    LogWarning(user_, std::to_string(info.corrupt_entries) +
                          " unreadable action entries: full (initial) sync");
  }
  snapshot_ = std::move(snapshot);
  generation_ = snapshot_.generation;
  if (session_id_ != 0) {
    // The probe's session is open and answered: go on in it.
    StartEngine();
    Pump();
    return;
  }
  WaitForServer();
}

void SyncDriver::WaitForServer() {
  if (protocol_->handshake_done()) {
    BeginSession();
    return;
  }
  // No connection to the server right now: ask for one at once (a trigger
  // or a poke means the server or the user is waiting) and wait a little.
  if (remote_ != nullptr && remote_->state() == RemoteConnection::State::kStopped) {
    Fail(Status::Aborted("the agent is stopping"));
    return;
  }
  if (remote_ != nullptr && remote_->state() == RemoteConnection::State::kBackoff) {
    if (!options_.reconnect_now) {
      Fail(Status::Unavailable("not connected to the server", remote_->last_error()));
      return;
    }
    remote_->ReconnectNow();
  }
  LogInfo(user_, "waiting for the connection to the server");
  std::weak_ptr<bool> alive = alive_;
  protocol_->WhenReady([this, alive] {
    if (alive.expired() || finished_ || session_id_ != 0) return;
    evtimer_del(wait_timer_.get());
    BeginSession();
  });
  wait_deadline_ms_ = NowMs() + static_cast<int64_t>(options_.connect_wait_ms);
  timeval tv = MsToTimeval(kWaitPollMs);
  evtimer_add(wait_timer_.get(), &tv);
}

// Polls the connection while waiting for it: a failed attempt (back in
// backoff) ends the wait at once instead of at the deadline.
void SyncDriver::WaitTimeoutCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<SyncDriver*>(arg);
  if (self->session_id_ != 0 || self->finished_ || self->failed_) return;
  RemoteConnection* remote = self->remote_;
  if (remote != nullptr && remote->state() == RemoteConnection::State::kBackoff) {
    self->Fail(Status::Unavailable("cannot connect to the server", remote->last_error()));
    return;
  }
  if (remote != nullptr && remote->state() == RemoteConnection::State::kStopped) {
    self->Fail(Status::Aborted("the agent is stopping"));
    return;
  }
  if (NowMs() >= self->wait_deadline_ms_) {
    self->Fail(Status::Unavailable("no connection to the server"));
    return;
  }
  timeval tv = MsToTimeval(kWaitPollMs);
  evtimer_add(self->wait_timer_.get(), &tv);
}

void SyncDriver::BeginSession() {
  session_id_ = protocol_->OpenSession(this);
  if (session_id_ == 0) {
    Fail(Status::Unavailable("no connection to the server"));
    return;
  }
  codec_ = std::make_unique<SessionCodec>(session_id_, user_);
  mailbox_->set_server_name(protocol_->server_name());
  if (probing_) {
    // Only BEGIN_SESSION: its reply says whether the server has work.
    engine::Frame hello;
    hello.kind = engine::FrameKind::kHello;
    hello.generation = quick_.generation;
    SendEngineFrame(hello, {});
    probe_deadline_ms_ = NowMs() + kProbeReplyMs;
    ArmTimer();
    return;
  }
  StartEngine();
  Pump();
}

void SyncDriver::StartEngine() {
  engine::SessionOptions eo = options_.engine;
  // The wire protocol ends an initial sync at its commit.
  eo.swap_after_commit = false;
  const uint32_t w = protocol_->window();
  // As many actions in flight as the server allows: on a mobile link each
  // window costs a round trip.
  if (w != 0) eo.flight.max_in_flight = w;
  result_.pending_actions = static_cast<int64_t>(snapshot_.actions.size());
  engine_ = std::make_unique<engine::SyncSession>(std::move(snapshot_), eo);
  std::vector<engine::Op> ops = engine_->Start(NowMs());
  if (!hello_reply_) {
    Enqueue(std::move(ops));
    return;
  }
  // BEGIN_SESSION went out with the probe and its reply is here: drop the
  // engine's and feed it the reply.
  for (engine::Op& op : ops) {
    if (op.kind == engine::OpKind::kSend && op.frame.kind == engine::FrameKind::kHello) continue;
    ops_.push_back(std::move(op));
  }
  engine::Frame reply = std::move(*hello_reply_);
  hello_reply_.reset();
  OnHelloReply(reply, hello_update_);
}

// The server's BEGIN_SESSION_REPLY when the quick check found nothing to do
// locally: with nothing pending on the server either (and the same
// generation and N), the session ends here, changing nothing on either side
// (the generation stays: the state it names is still both sides' state).
// Otherwise the full snapshot is loaded and the session goes on.
void SyncDriver::OnProbeReply(const engine::Frame& reply, const SessionCodec::Decoded& d) {
  probing_ = false;
  std::string why;
  if (!d.server_kind_update || reply.generation != quick_.generation) {
    why = "the server expects an initial sync";
  } else if (!d.server_pending) {
    why = "the server does not say what it holds";
  } else if (*d.server_pending != 0) {
    why = std::to_string(*d.server_pending) + " server actions";
  } else if (reply.window_size != quick_.window_size) {
    why = "the window changed";
  }
  if (why.empty()) {
    result_.no_change = true;
    engine_done_ = true;
    end_sent_ = true;
    SendWire(codec_->EndSession(false, "nothing to do", true));
    return;
  }
  LogDebug(user_, "quick check: " + why + ": full session");
  hello_reply_ = reply;
  hello_update_ = d.server_kind_update;
  LoadSnapshot();
}

void SyncDriver::OnHelloReply(const engine::Frame& f, bool server_kind_update) {
  mailbox_->set_remote_window(f.window_size);
  std::vector<engine::Op> ops = engine_->OnFrame(f, NowMs());
  if (server_kind_update && engine_->kind() == engine::SyncKind::kInitial) {
    // The server would run an update sync, but our state cannot (e.g.
    // the id map is gone): keep the engine's durable first steps, drop
    // its requests, abort, and start an initial sync at once.
    LogInfo(user_, "local sync state lost: starting over with an initial sync");
    for (engine::Op& op : ops) {
      if (op.kind != engine::OpKind::kSend) ops_.push_back(std::move(op));
    }
    abort_after_ops_ = true;
    return;
  }
  Enqueue(std::move(ops));
}

void SyncDriver::Enqueue(std::vector<engine::Op> ops) {
  for (engine::Op& op : ops) ops_.push_back(std::move(op));
}

void SyncDriver::Pump() {
  while (!busy_ && !finished_) {
    if (failed_) {
      MaybeFinish();  // writes what is due first (what the server acknowledged)
      return;
    }
    if (!ops_.empty()) {
      engine::Op& next = ops_.front();
      if (IsDurableOp(next.kind) && durable_.size() < LocalMailbox::kMaxDurableBatch) {
        durable_.push_back(std::move(next));
        ops_.pop_front();
        continue;
      }
      if (!durable_.empty() && !MayPassDurable(next)) {
        FlushDurable();
        continue;
      }
      engine::Op op = std::move(next);
      ops_.pop_front();
      Execute(std::move(op));
      continue;
    }
    if (abort_after_ops_) {
      // The durable part of the engine's first steps is done (generation 0
      // written): end this session and run an initial one right away.
      result_.rerun = true;
      Fail(Status::OK());
      continue;
    }
    if (engine_done_ && server_ended_) {
      MaybeFinish();
      return;
    }
    if (!events_.empty()) {
      Event ev = std::move(events_.front());
      events_.pop_front();
      Feed(std::move(ev));
      continue;
    }
    break;
  }
  if (!finished_) ArmTimer();
}

void SyncDriver::Execute(engine::Op op) {
  using engine::OpKind;
  switch (op.kind) {
    case OpKind::kSend: {
      if (codec_->NeedsBody(op.frame)) return SendWithBody(std::move(op.frame));
      SendEngineFrame(op.frame, {});
      return;
    }
    case OpKind::kReport: LogDebug(user_, "sync: " + op.note); return;
    case OpKind::kDone:
      if (!op.status.ok()) {
        Fail(op.status);
        return;
      }
      engine_done_ = true;
      result_.initial = engine_->kind() == engine::SyncKind::kInitial;
      if (!server_ended_ && !end_sent_) {
        // An update sync: tell the server we are done; its reply (with the
        // generation it keeps) ends the session.
        end_sent_ = true;
        SendWire(codec_->EndSession(true));
      }
      return;
    case OpKind::kPutMapping:
    case OpKind::kRemoveMapping:
    case OpKind::kDeleteActionEntry:
    case OpKind::kSetGeneration:
      durable_.push_back(std::move(op));  // Pump() takes these before us
      FlushDurable();
      return;
    default: break;
  }
  if (!IsMailboxOp(op.kind)) return;
  std::string body;
  if (op.kind == OpKind::kAppendLocal || op.kind == OpKind::kSubmitMessage ||
      op.kind == OpKind::kFileInSent) {
    body = codec_->TakeBody(op.message.id);
    if (body.empty()) {
      events_.push_back(
          LocalApplied{op.tag,
                       Status::Corruption("no message body from the server for remote " +
                                          std::to_string(op.message.id)),
                       {}});
      return;
    }
  }
  busy_ = true;
  std::weak_ptr<bool> alive = alive_;
  const uint64_t tag = op.tag;
  mailbox_->Apply(op, body, [this, alive, tag](const Status& s, const engine::LocalId& id) {
    if (alive.expired()) return;
    busy_ = false;
    events_.push_back(LocalApplied{tag, s, id});
    Pump();
  });
}

// Durable ops (mappings, action-entry deletes, the generation) are written
// in batches, as few SETMETADATA as fit: Dovecot's cost per command grows
// with the mailbox (maildir re-reads its uidlist), so one per op would make
// an initial sync quadratic. They wait in durable_ while the engine sends
// more actions or SWAP (MayPassDurable) and are written before anything that
// depends on them: a mailbox op, an ACK to the server, an initial sync's
// commit, the end of the session (an update sync's END_SESSION passes: they
// go with the generation of the reply), or when kMaxDurableBatch are
// waiting. A crash loses at
// most a batch of writes whose actions the server already has: the next
// session sends them again and the server answers them idempotently
// (insert keys, states), or an initial sync pairs them by match key.
bool SyncDriver::MayPassDurable(const engine::Op& op) const {
  // The end of an update sync too: what waits is written with the
  // generation the server's reply brings, in one SETMETADATA. A crash before
  // that write is a crash after END_SESSION{OK} either way: the next
  // session finds the old generation (an initial sync) if the server
  // committed, and the action entries the server applied (acknowledged:
  // harmless to send again) if it did not.
  if (op.kind == engine::OpKind::kDone) {
    return op.status.ok() && engine_ && engine_->kind() == engine::SyncKind::kUpdate;
  }
  // SWAP too: the server's actions that follow are applied by mailbox ops
  // (written before them) and acknowledged by ACKs (written before them).
  return op.kind == engine::OpKind::kReport ||
         (op.kind == engine::OpKind::kSend && (op.frame.kind == engine::FrameKind::kAction ||
                                               op.frame.kind == engine::FrameKind::kSwap));
}

void SyncDriver::FlushDurable() {
  auto batch = std::make_shared<std::vector<engine::Op>>(std::move(durable_));
  durable_.clear();
  busy_ = true;
  std::weak_ptr<bool> alive = alive_;
  mailbox_->ApplyDurable(*batch, [this, alive, batch](const Status& s, const engine::LocalId&) {
    if (alive.expired()) return;
    busy_ = false;
    if (!s.ok()) {
      Fail(s);
      Pump();
      return;
    }
    for (const engine::Op& op : *batch) {
      if (op.kind == engine::OpKind::kSetGeneration) {
        generation_ = op.generation;
      } else if (op.kind == engine::OpKind::kDeleteActionEntry && result_.pending_actions > 0) {
        // What `mobilesyncctl status` shows: entries left after the session.
        --result_.pending_actions;
      }
    }
    Pump();
  });
}

// An INSERT or FILED_AS_SENT carries the message. The engine queues up to W
// of them at once (its flight window): their bodies are fetched together,
// up to kPrefetchCount messages or kPrefetchBytes, one IMAP round trip for
// all instead of one each.
void SyncDriver::SendWithBody(engine::Frame frame) {
  const engine::LocalId first = frame.action.local;
  auto cached = prefetched_.find(first);
  if (cached != prefetched_.end()) {
    std::string body = std::move(cached->second);
    prefetched_.erase(cached);
    SendEngineFrame(frame, std::move(body));
    return;
  }
  std::vector<engine::LocalId> ids{first};
  uint64_t bytes = mailbox_->ListedSize(first);
  for (const engine::Op& next : ops_) {
    if (ids.size() >= kPrefetchCount) break;
    if (next.kind != engine::OpKind::kSend || !codec_->NeedsBody(next.frame)) continue;
    const engine::LocalId& id = next.frame.action.local;
    if (id.mailbox != first.mailbox || id.uidvalidity != first.uidvalidity) continue;
    const uint64_t size = mailbox_->ListedSize(id);
    if (bytes + size > kPrefetchBytes) break;
    bytes += size;
    ids.push_back(id);
  }
  busy_ = true;
  std::weak_ptr<bool> alive = alive_;
  mailbox_->FetchBodies(ids, [this, alive, frame](const Status& s,
                                                  std::map<engine::LocalId, std::string> bodies) {
    if (alive.expired()) return;
    busy_ = false;
    auto own = bodies.find(frame.action.local);
    if (!s.ok()) {
      Fail(s);
    } else if (own == bodies.end()) {
      Fail(Status::NotFound("fetch body: " + engine::ToString(frame.action.local) + " is gone"));
    } else if (!failed_) {
      std::string body = std::move(own->second);
      bodies.erase(own);
      for (auto& [id, b] : bodies) prefetched_[id] = std::move(b);
      SendEngineFrame(frame, std::move(body));
    }
    Pump();
  });
}

void SyncDriver::SendEngineFrame(const engine::Frame& f, std::string body) {
  std::vector<wire::Frame> out;
  Status s = codec_->Encode(f, std::move(body), &out);
  if (!s.ok()) {
    Fail(s);
    return;
  }
  for (const wire::Frame& w : out) SendWire(w);
}

void SyncDriver::SendWire(const wire::Frame& f) {
  if (failed_ && f.type() != wire::FrameType::kEndSession) return;
  Status s = protocol_->SendSessionFrame(f);
  if (!s.ok()) Fail(s);
}

void SyncDriver::OnSessionFrame(wire::Frame&& frame) {
  if (finished_ || failed_) return;
  events_.push_back(std::move(frame));
  Pump();
}

void SyncDriver::OnSessionLost(const Status& why) {
  session_id_ = 0;  // the protocol forgot it
  if (finished_) return;
  if (engine_done_ && end_sent_) {
    // Our part was done; only the server's reply is missing. Nothing is
    // lost, but the server may not have committed: next time will tell.
    server_ended_ = true;
  }
  Fail(Status::Unavailable("connection to the server lost", why.ToString()));
  Pump();
}

void SyncDriver::Feed(Event ev) {
  const int64_t now = NowMs();
  if (auto* f = std::get_if<wire::Frame>(&ev)) {
    FeedWire(std::move(*f));
  } else if (auto* a = std::get_if<LocalApplied>(&ev)) {
    if (engine_ && !engine_->done()) {
      Enqueue(engine_->OnLocalApplied(a->tag, a->status, a->new_id, now));
    } else if (!a->status.ok()) {
      Fail(a->status);
    }
  } else if (engine_) {
    if (!engine_->done()) Enqueue(engine_->OnTimer(now));
  } else if (probing_ && now >= probe_deadline_ms_) {
    Fail(Status::Timeout("no BEGIN_SESSION_REPLY from the server"));
  }
}

void SyncDriver::FeedWire(wire::Frame&& frame) {
  SessionCodec::Decoded d;
  Status s = codec_->Decode(std::move(frame), &d);
  if (!s.ok()) {
    Fail(s);
    return;
  }
  for (const wire::Frame& r : d.replies) SendWire(r);
  if (d.temporary_failure) {
    Fail(Status::Aborted("the server could not apply an action now", d.detail));
    return;
  }
  if (!d.detail.empty()) LogInfo(user_, "server refused an action: " + d.detail);
  const int64_t now = NowMs();
  for (const engine::Frame& f : d.frames) {
    if (!engine_) {
      if (probing_ && f.kind == engine::FrameKind::kHelloReply) {
        OnProbeReply(f, d);
      } else if (!result_.no_change) {
        Fail(Status::Corruption(std::string("unexpected ") + engine::FrameKindName(f.kind) +
                                " before the session started"));
        return;
      }
      continue;
    }
    if (engine_->done()) continue;
    if (f.kind == engine::FrameKind::kHelloReply) {
      OnHelloReply(f, d.server_kind_update);
      if (abort_after_ops_) return;
      continue;
    }
    Enqueue(engine_->OnFrame(f, now));
  }
  if (d.ended) {
    server_ended_ = true;
    session_id_ = 0;
    protocol_->CloseSession(codec_->session_id());
    // An update sync's reply: keep the server's generation if it moved (an
    // initial sync's commit is the engine's business: kCommitAck).
    if (engine_ && engine_->kind() == engine::SyncKind::kUpdate && d.end_generation != 0 &&
        d.end_generation != generation_) {
      engine::Op op;
      op.kind = engine::OpKind::kSetGeneration;
      op.generation = d.end_generation;
      ops_.push_back(std::move(op));
    }
  }
}

void SyncDriver::Fail(Status why) {
  if (finished_ || failed_) return;
  failed_ = true;
  result_.status = why;
  ops_.clear();
  events_.clear();
  if (session_id_ != 0 && !server_ended_) {
    // Tell the server; the frame goes out even though we failed.
    std::string detail = why.ok() ? "restarting as an initial sync" : why.ToString();
    Status s = protocol_->SendSessionFrame(codec_->EndSession(false, detail));
    (void)s;
    protocol_->CloseSession(session_id_);
    session_id_ = 0;
  }
  if (!busy_) MaybeFinish();
}

void SyncDriver::MaybeFinish() {
  if (finished_ || busy_) return;
  if (!durable_.empty()) {
    FlushDurable();  // its callback comes back here
    return;
  }
  if (!sealed_ && !result_.no_change) {
    sealed_ = true;
    result_.quick_token.clear();
    if (!failed_ && mailbox_ && mailbox_->wrote_quick_entry()) {
      // The session left a quick entry: the quick check that the next
      // session would run, run now on the connection we have (the dict is
      // loaded), gives the token that lets the next one skip the attributes.
      busy_ = true;
      std::weak_ptr<bool> alive = alive_;
      mailbox_->LoadQuick("", [this, alive](const Status& s, QuickCheck q) {
        if (alive.expired()) return;
        busy_ = false;
        if (s.ok() && q.unchanged) result_.quick_token = q.token;
        if (!s.ok()) LogDebug(user_, "no quick token: " + s.ToString());
        MaybeFinish();
      });
      return;
    }
  }
  finished_ = true;
  if (mailbox_) mailbox_->SaveIdMapCache();
  evtimer_del(timer_.get());
  evtimer_del(wait_timer_.get());
  if (session_id_ != 0) {
    protocol_->CloseSession(session_id_);
    session_id_ = 0;
  }
  if (codec_) {
    result_.sent = codec_->actions_sent();
    result_.received = codec_->actions_received();
  }
  // Deliver the result from the loop: the owner may delete us in `done`.
  event_active(done_event_.get(), EV_TIMEOUT, 0);
}

void SyncDriver::DoneCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<SyncDriver*>(arg);
  Done done = std::move(self->done_);
  SessionResult r = std::move(self->result_);
  if (done) done(std::move(r));  // may delete self
}

void SyncDriver::ArmTimer() {
  evtimer_del(timer_.get());
  std::optional<int64_t> d;
  if (probing_ && session_id_ != 0) {
    d = probe_deadline_ms_;
  } else if (engine_ && !engine_->done()) {
    d = engine_->next_deadline();
  }
  if (!d) return;
  timeval tv = MsToTimeval(*d - NowMs());
  evtimer_add(timer_.get(), &tv);
}

void SyncDriver::TimerCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<SyncDriver*>(arg);
  if (self->finished_ || self->failed_) return;
  self->events_.push_back(TimerFired{});
  self->Pump();
}

}  // namespace mobilesync::agent
