#include "sync_agent/engine/sync_session.h"

#include <algorithm>
#include <utility>

namespace mobilesync::engine {

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kSend: return "send";
    case OpKind::kAppendLocal: return "append-local";
    case OpKind::kSetLocalState: return "set-local-state";
    case OpKind::kDestroyLocal: return "destroy-local";
    case OpKind::kSubmitMessage: return "submit-message";
    case OpKind::kFileInSent: return "file-in-sent";
    case OpKind::kPutMapping: return "put-mapping";
    case OpKind::kRemoveMapping: return "remove-mapping";
    case OpKind::kDeleteActionEntry: return "delete-action-entry";
    case OpKind::kSetGeneration: return "set-generation";
    case OpKind::kReport: return "report";
    case OpKind::kDone: return "done";
  }
  return "?";
}

SyncSession::SyncSession(AgentSnapshot snapshot, const SessionOptions& options)
    : options_(options),
      snapshot_(std::move(snapshot)),
      map_(std::move(snapshot_.map)),
      local_(snapshot_.messages),
      window_(options.flight) {
  snapshot_.messages.clear();
  snapshot_.map.Clear();
  window_policy_.prefer_flagged_or_unread = options.prefer_flagged_or_unread;
}

// --- Plumbing ------------------------------------------------------------------

std::vector<Op> SyncSession::Flush() {
  std::vector<Op> out;
  out.swap(out_);
  return out;
}

void SyncSession::Report(std::string note) {
  Op op;
  op.kind = OpKind::kReport;
  op.note = std::move(note);
  Emit(std::move(op));
}

void SyncSession::Fail(Status status) {
  if (phase_ == Phase::kDone) return;
  phase_ = Phase::kDone;
  // Everything not yet acknowledged stays in the action list and the
  // mapping table: the next session carries on from there.
  status_ = status;
  Op op;
  op.kind = OpKind::kDone;
  op.status = std::move(status);
  Emit(std::move(op));
}

void SyncSession::Finish() {
  phase_ = Phase::kDone;
  request_.reset();
  Op op;
  op.kind = OpKind::kDone;
  Emit(std::move(op));
}

void SyncSession::SendRequest(Frame frame, int64_t now_ms) {
  request_ = frame;
  request_deadline_ = now_ms + options_.flight.timeout_ms;
  request_attempts_ = 1;
  Op op;
  op.kind = OpKind::kSend;
  op.frame = std::move(frame);
  Emit(std::move(op));
}

void SyncSession::PutMapping(const LocalId& local, RemoteId remote) {
  Status s = map_.Put(local, remote);
  if (!s.ok()) {
    // Two local messages share a match key and the server matched both to
    // one remote message: keep the first pairing, leave this one unmapped.
    Report("not mapped: " + s.ToString());
    return;
  }
  Op op;
  op.kind = OpKind::kPutMapping;
  op.local = local;
  op.remote = remote;
  Emit(std::move(op));
}

void SyncSession::RemoveMapping(const LocalId& local) {
  const RemoteId* r = map_.FindRemote(local);
  Op op;
  op.kind = OpKind::kRemoveMapping;
  op.local = local;
  op.remote = r != nullptr ? *r : kNoRemoteId;
  map_.RemoveByLocal(local);
  Emit(std::move(op));
}

uint64_t SyncSession::LocalOp(OpKind kind, PendingLocal pending, Op op) {
  uint64_t tag = next_local_tag_++;
  op.kind = kind;
  op.tag = tag;
  pending_local_.emplace(tag, std::move(pending));
  Emit(std::move(op));
  return tag;
}

std::optional<int64_t> SyncSession::next_deadline() const {
  if (phase_ == Phase::kDone) return std::nullopt;
  std::optional<int64_t> d = window_.next_deadline();
  // While the session itself is busy with the mailbox, silence from the
  // server is expected: do not count it against the server.
  if (request_ && pending_local_.empty()) {
    if (!d || request_deadline_ < *d) d = request_deadline_;
  }
  return d;
}

// --- Events ------------------------------------------------------------------

std::vector<Op> SyncSession::Start(int64_t now_ms) {
  Frame hello;
  hello.kind = FrameKind::kHello;
  hello.generation = snapshot_.generation;
  hello.conflict = options_.conflict;
  SendRequest(hello, now_ms);
  return Flush();
}

std::vector<Op> SyncSession::OnFrame(const Frame& frame, int64_t now_ms) {
  if (phase_ == Phase::kDone) return {};
  switch (frame.kind) {
    case FrameKind::kHelloReply:
      if (phase_ == Phase::kHello) OnHelloReply(frame, now_ms);
      break;
    case FrameKind::kList:
      if (phase_ == Phase::kList) OnList(frame, now_ms);
      break;
    case FrameKind::kFetched:
      if (phase_ == Phase::kFetch) OnFetched(frame);
      break;
    case FrameKind::kAck: OnAck(frame); break;
    case FrameKind::kNack:
      // The server could not apply it now; the entry stays in flight and
      // its time-out re-sends it (counted against its attempts).
      Report("nack for tag " + std::to_string(frame.tag));
      break;
    case FrameKind::kAction:
      if (phase_ == Phase::kSwap) {
        request_deadline_ = now_ms + options_.flight.timeout_ms;
        request_attempts_ = 1;
        OnServerAction(frame);
      }
      break;
    case FrameKind::kSyncComplete:
      if (phase_ == Phase::kSwap) {
        complete_received_ = true;
        request_.reset();
      }
      break;
    case FrameKind::kCommitAck:
      // The server may choose the new generation itself (the wire protocol's
      // END_SESSION reply carries it): adopt whatever non-zero one it names.
      if (phase_ == Phase::kCommit && frame.generation != 0) {
        new_generation_ = frame.generation;
        request_.reset();
        // The list comparison subsumed every entry that was listed when the
        // session began; delete them before adopting the generation, so a
        // crash in between re-runs an initial sync rather than replaying
        // stale entries in an update sync.
        // (A message filed as sent is news the lists do not show: it was
        // sent in the merge phase and deleted on its own ack.)
        for (const Action& a : snapshot_.actions) {
          if (a.kind == ActionKind::kFiledAsSent) continue;
          Op op;
          op.kind = OpKind::kDeleteActionEntry;
          op.seq = a.seq;
          Emit(std::move(op));
        }
        Op op;
        op.kind = OpKind::kSetGeneration;
        op.generation = new_generation_;
        Emit(std::move(op));
        committed_ = true;
        // The server kept what its list cannot show either (messages composed
        // on the phone to be delivered): swap to receive them.
        if (options_.swap_after_commit) {
          StartSwap(now_ms);
        } else {
          Finish();
        }
      }
      break;
    default:
      Report(std::string("unexpected frame from the server: ") + FrameKindName(frame.kind));
      break;
  }
  Advance(now_ms);
  return Flush();
}

std::vector<Op> SyncSession::OnLocalApplied(uint64_t tag, const Status& status,
                                            const LocalId& new_id, int64_t now_ms) {
  if (phase_ == Phase::kDone) return {};
  auto it = pending_local_.find(tag);
  if (it == pending_local_.end()) return {};
  PendingLocal p = std::move(it->second);
  pending_local_.erase(it);
  if (!status.ok()) {
    // The server's action stays unacknowledged and is re-sent next time.
    Fail(status);
    return Flush();
  }
  switch (p.what) {
    case PendingLocal::What::kFetchAppend:
      appending_.erase(p.remote);
      local_.Put(LocalMessage{new_id, p.meta});
      PutMapping(new_id, p.remote);
      break;
    case PendingLocal::What::kMergeState: SetLocalState(p.local, p.state, new_id); break;
    case PendingLocal::What::kMergeDestroy:
      // Only now that the local copy is gone may the anchor go.
      local_.Erase(p.local);
      if (map_.HasLocal(p.local)) RemoveMapping(p.local);
      break;
    case PendingLocal::What::kServerAction:
      server_tags_applying_.erase(p.server_tag);
      switch (p.step) {
        case RemoteApply::Step::kAppend:
          appending_.erase(p.remote);
          local_.Put(LocalMessage{new_id, p.meta});
          PutMapping(new_id, p.remote);
          break;
        case RemoteApply::Step::kSetState: SetLocalState(p.local, p.state, new_id); break;
        case RemoteApply::Step::kDestroy:
          // Only now that the local copy is gone may the anchor go.
          local_.Erase(p.local);
          RemoveMapping(p.local);
          break;
        default: break;
      }
      AckServer(p.server_tag, AckOutcome::kApplied);
      break;
  }
  Advance(now_ms);
  return Flush();
}

std::vector<Op> SyncSession::OnTimer(int64_t now_ms) {
  if (phase_ == Phase::kDone) return {};
  bool exhausted = false;
  for (const ActionWindow::Entry& e : window_.TakeExpired(now_ms, &exhausted)) {
    Op op;
    op.kind = OpKind::kSend;
    op.frame = ActionFrame(e.tag, e.payload);
    Emit(std::move(op));
  }
  if (exhausted) {
    Fail(Status::Timeout("no ack from the server",
                         std::to_string(options_.flight.max_attempts) + " attempts"));
    return Flush();
  }
  if (request_ && pending_local_.empty() && now_ms >= request_deadline_) {
    if (request_attempts_ >= options_.flight.max_attempts) {
      Fail(Status::Timeout("no reply from the server", FrameKindName(request_->kind)));
      return Flush();
    }
    ++request_attempts_;
    request_deadline_ = now_ms + options_.flight.timeout_ms;
    Frame again = *request_;
    if (again.kind == FrameKind::kFetch) {
      again.ids.assign(fetching_.begin(), fetching_.end());
    }
    Op op;
    op.kind = OpKind::kSend;
    op.frame = std::move(again);
    Emit(std::move(op));
  }
  return Flush();
}

void SyncSession::SetLocalState(const LocalId& local, MessageState state, const LocalId& new_id) {
  if (!new_id.valid() || new_id == local) {
    local_.SetState(local, state);
    return;
  }
  // The message moved (e.g. into Trash) and got a new id: the pairing
  // follows it. Unmap first: the map is one-to-one.
  const LocalMessage* m = local_.Find(local);
  MessageMeta meta = m != nullptr ? m->meta : MessageMeta{};
  meta.state = state;
  const RemoteId* r = map_.FindRemote(local);
  RemoteId remote = r != nullptr ? *r : kNoRemoteId;
  local_.Erase(local);
  local_.Put(LocalMessage{new_id, meta});
  if (remote != kNoRemoteId) {
    RemoveMapping(local);
    PutMapping(new_id, remote);
  }
}

// --- Hello and initial sync ----------------------------------------------------

void SyncSession::OnHelloReply(const Frame& frame, int64_t now_ms) {
  request_.reset();
  server_generation_ = frame.generation;
  window_policy_.size = frame.window_size;
  SyncDecision d = snapshot_.mailbox_uidvalidity.empty()
                       ? DecideSyncKind(snapshot_.generation, frame.generation, map_,
                                        frame.window_count, snapshot_.uidvalidity)
                       : DecideSyncKind(snapshot_.generation, frame.generation, map_,
                                        frame.window_count, snapshot_.mailbox_uidvalidity);
  kind_ = d.kind;
  Report(std::string(d.kind == SyncKind::kInitial ? "initial" : "update") + " sync: " + d.reason);
  if (kind_ == SyncKind::kUpdate) {
    StartReplay();
    return;
  }
  // An initial sync rebuilds the pairing piece by piece. Forget the old
  // generation first (seed 000 [0041]: reset the sync state), so that a
  // crash part-way leads to another initial sync, never to an update sync
  // over a half-built map.
  if (snapshot_.generation != 0) {
    Op op;
    op.kind = OpKind::kSetGeneration;
    op.generation = 0;
    Emit(std::move(op));
  }
  // Pairings made under another UIDVALIDITY name messages that no longer
  // exist under those uids; the match keys will pair them again.
  std::vector<LocalId> stale;
  for (const auto& [l, r] : map_.pairs()) {
    uint32_t current = snapshot_.uidvalidity;
    if (!snapshot_.mailbox_uidvalidity.empty()) {
      auto it = snapshot_.mailbox_uidvalidity.find(l.mailbox);
      current = it == snapshot_.mailbox_uidvalidity.end() ? 0 : it->second;
    }
    if (l.uidvalidity != current) stale.push_back(l);
  }
  for (const LocalId& l : stale) RemoveMapping(l);
  phase_ = Phase::kList;
  Frame req;
  req.kind = FrameKind::kListRequest;
  SendRequest(req, now_ms);
}

void SyncSession::OnList(const Frame& frame, int64_t now_ms) {
  request_.reset();
  plan_ = PlanInitialSync(local_.List(), frame.messages, map_, snapshot_.actions, options_.conflict,
                          frame.ids);
  for (const auto& [l, r] : plan_.stale) {
    if (map_.HasLocal(l)) RemoveMapping(l);
  }
  for (const auto& [l, r] : plan_.map_by_key) PutMapping(l, r);
  fetch_queue_.assign(plan_.fetch.begin(), plan_.fetch.end());
  phase_ = Phase::kFetch;
  SendFetchBatch(now_ms);
}

void SyncSession::SendFetchBatch(int64_t now_ms) {
  if (fetch_queue_.empty()) return;
  Frame req;
  req.kind = FrameKind::kFetch;
  while (!fetch_queue_.empty() && req.ids.size() < options_.flight.max_in_flight) {
    req.ids.push_back(fetch_queue_.front());
    fetching_.insert(fetch_queue_.front());
    fetch_queue_.pop_front();
  }
  SendRequest(req, now_ms);
}

void SyncSession::OnFetched(const Frame& frame) {
  if (frame.ids.empty() || fetching_.erase(frame.ids[0]) == 0) {
    return;  // a duplicate, or an answer to an earlier attempt
  }
  RemoteId r = frame.ids[0];
  if (frame.missing || frame.messages.empty()) {
    Report("fetch of remote " + std::to_string(r) + ": gone from the server");
    return;
  }
  const RemoteMessage& m = frame.messages[0];
  if (map_.HasRemote(r) || appending_.count(r) != 0) return;
  if (const LocalMessage* l = local_.FindUnmappedByKey(m.meta.match_key, map_)) {
    PutMapping(l->id, r);
    return;
  }
  PendingLocal p;
  p.what = PendingLocal::What::kFetchAppend;
  p.remote = r;
  p.meta = m.meta;
  appending_.insert(r);
  Op op;
  op.message = m;
  LocalOp(OpKind::kAppendLocal, std::move(p), std::move(op));
}

// A local op of the merge phase, for `p.local` (with its remote id and the
// state to set, where they apply).
void SyncSession::MergeOp(OpKind kind, PendingLocal p) {
  Op op;
  op.local = p.local;
  op.message.id = p.remote;
  op.state = p.state;
  LocalOp(kind, std::move(p), std::move(op));
}

void SyncSession::StartMerge() {
  phase_ = Phase::kMerge;
  // Destroyed on the device since the last sync: the pairing stays until
  // the local copy is gone, so pull cannot copy it back meanwhile.
  for (const auto& [l, r] : plan_.destroy_local) {
    Report("remote " + std::to_string(r) + " was destroyed on the server: destroying " +
           ToString(l));
    PendingLocal p;
    p.what = PendingLocal::What::kMergeDestroy;
    p.local = l;
    p.remote = r;
    MergeOp(OpKind::kDestroyLocal, std::move(p));
  }
  for (const auto& [l, state] : plan_.set_local) {
    PendingLocal p;
    p.what = PendingLocal::What::kMergeState;
    p.local = l;
    p.state = state;
    MergeOp(OpKind::kSetLocalState, std::move(p));
  }
  for (const auto& [r, state] : plan_.set_remote) {
    const LocalId* l = map_.FindLocal(r);
    const LocalMessage* m = l != nullptr ? local_.Find(*l) : nullptr;
    Action a;
    a.kind = StateChangeKind(m != nullptr ? m->meta.state : state, state);
    a.remote = r;
    if (l != nullptr) a.local = *l;
    a.meta.state = state;
    Enqueue(std::move(a));
  }
  for (const Action& a : snapshot_.actions) {
    if (a.kind == ActionKind::kFiledAsSent) Enqueue(a);
  }
  for (RemoteId r : plan_.destroy_remote) {
    Action a;
    a.kind = ActionKind::kDestroy;
    a.remote = r;
    a.meta.state = MessageState::kDestroyed;
    if (const LocalId* l = map_.FindLocal(r)) a.local = *l;
    Enqueue(std::move(a));
  }
}

void SyncSession::StartCommit(int64_t now_ms) {
  phase_ = Phase::kCommit;
  new_generation_ = std::max(snapshot_.generation, server_generation_) + 1;
  Frame req;
  req.kind = FrameKind::kCommit;
  req.generation = new_generation_;
  SendRequest(req, now_ms);
}

// --- Update sync ------------------------------------------------------------------

void SyncSession::StartReplay() {
  phase_ = Phase::kReplay;
  ReplayPlan plan = PlanReplay(snapshot_.actions, local_, map_, window_policy_);
  for (auto& [seq, why] : plan.skip) {
    Report("action #" + std::to_string(seq) + " not sent: " + why);
    Op op;
    op.kind = OpKind::kDeleteActionEntry;
    op.seq = seq;
    Emit(std::move(op));
  }
  for (Action& a : plan.send) Enqueue(std::move(a));
}

void SyncSession::StartSwap(int64_t now_ms) {
  phase_ = Phase::kSwap;
  Frame req;
  req.kind = FrameKind::kSwap;
  SendRequest(req, now_ms);
}

void SyncSession::AckServer(uint64_t server_tag, AckOutcome outcome) {
  server_tags_done_[server_tag] = outcome;
  Op op;
  op.kind = OpKind::kSend;
  op.frame.kind = FrameKind::kAck;
  op.frame.tag = server_tag;
  op.frame.outcome = outcome;
  Emit(std::move(op));
}

void SyncSession::OnServerAction(const Frame& frame) {
  uint64_t tag = frame.tag;
  if (server_tags_applying_.count(tag) != 0) return;  // being applied
  auto done = server_tags_done_.find(tag);
  if (done != server_tags_done_.end()) {
    AckServer(tag, done->second);  // our ack was lost: ack again
    return;
  }
  const Action& a = frame.action;
  if (a.kind == ActionKind::kInsert && appending_.count(a.remote) != 0) {
    return;  // the same message under another tag is being appended
  }
  RemoteApply plan = PlanRemoteApply(a, local_, map_);
  if (!plan.note.empty()) Report(plan.note);
  PendingLocal p;
  p.what = PendingLocal::What::kServerAction;
  p.server_tag = tag;
  p.step = plan.step;
  p.remote = a.remote;
  p.local = plan.local;
  p.meta = a.meta;
  p.state = plan.state;
  Op op;
  op.local = plan.local;
  op.message = RemoteMessage{a.remote, a.meta};
  switch (plan.step) {
    case RemoteApply::Step::kAckNow: AckServer(tag, plan.outcome); return;
    case RemoteApply::Step::kMapExisting:
      PutMapping(plan.local, a.remote);
      AckServer(tag, AckOutcome::kApplied);
      return;
    case RemoteApply::Step::kUnmap:
      RemoveMapping(plan.local);
      AckServer(tag, AckOutcome::kApplied);
      return;
    case RemoteApply::Step::kAppend:
      appending_.insert(a.remote);
      server_tags_applying_.insert(tag);
      LocalOp(OpKind::kAppendLocal, std::move(p), std::move(op));
      return;
    case RemoteApply::Step::kSetState:
      op.state = plan.state;
      server_tags_applying_.insert(tag);
      LocalOp(OpKind::kSetLocalState, std::move(p), std::move(op));
      return;
    case RemoteApply::Step::kDestroy:
      server_tags_applying_.insert(tag);
      LocalOp(OpKind::kDestroyLocal, std::move(p), std::move(op));
      return;
    case RemoteApply::Step::kSubmit:
      server_tags_applying_.insert(tag);
      LocalOp(OpKind::kSubmitMessage, std::move(p), std::move(op));
      return;
    case RemoteApply::Step::kFileSent:
      server_tags_applying_.insert(tag);
      LocalOp(OpKind::kFileInSent, std::move(p), std::move(op));
      return;
  }
}

// --- Window: normalise and pull ----------------------------------------------------

void SyncSession::StartNormalise() {
  phase_ = Phase::kNormalise;
  for (const auto& [l, r] : PlanNormalise(local_.List(), map_, window_policy_)) {
    Action a;
    a.kind = ActionKind::kUnmap;
    a.local = l;
    a.remote = r;
    Enqueue(std::move(a));
  }
}

void SyncSession::StartPull() {
  phase_ = Phase::kPull;
  for (const LocalId& l : PlanPull(local_.List(), map_, window_policy_)) {
    Action a;
    a.kind = ActionKind::kInsert;
    a.local = l;
    a.meta = local_.Find(l)->meta;
    Enqueue(std::move(a));
  }
}

// --- The action window -----------------------------------------------------------

void SyncSession::Enqueue(Action action) {
  std::string subject =
      action.local.valid() ? ToString(action.local) : "remote:" + std::to_string(action.remote);
  outbox_.push_back(std::move(action));
  window_.Enqueue(std::move(subject), outbox_.size() - 1);
}

Frame SyncSession::ActionFrame(uint64_t tag, size_t payload) const {
  Frame f;
  f.kind = FrameKind::kAction;
  f.tag = tag;
  f.action = outbox_[payload];
  return f;
}

void SyncSession::Pump(int64_t now_ms) {
  for (const ActionWindow::Entry& e : window_.TakeSendable(now_ms)) {
    Op op;
    op.kind = OpKind::kSend;
    op.frame = ActionFrame(e.tag, e.payload);
    Emit(std::move(op));
  }
}

void SyncSession::OnAck(const Frame& frame) {
  std::optional<size_t> payload = window_.Complete(frame.tag);
  if (!payload) return;  // a duplicate or stale ack
  const Action& a = outbox_[*payload];
  if (frame.outcome != AckOutcome::kApplied) {
    Report(ToString(a) + ": " + AckOutcomeName(frame.outcome));
  }
  switch (a.kind) {
    case ActionKind::kInsert:
      if (frame.remote != kNoRemoteId && local_.Find(a.local) != nullptr) {
        PutMapping(a.local, frame.remote);
      }
      break;
    case ActionKind::kDestroy:
    case ActionKind::kUnmap:
      if (a.local.valid() && map_.HasLocal(a.local)) RemoveMapping(a.local);
      break;
    default: break;
  }
  // Only after its effect on the mapping is persisted: a crash in between
  // re-sends the entry, and re-applying it is harmless.
  if (a.seq != 0) {
    Op op;
    op.kind = OpKind::kDeleteActionEntry;
    op.seq = a.seq;
    Emit(std::move(op));
  }
}

// --- Phase sequencing ----------------------------------------------------------

void SyncSession::Advance(int64_t now_ms) {
  for (;;) {
    if (phase_ == Phase::kDone) return;
    Pump(now_ms);
    bool quiet = window_.idle() && pending_local_.empty();
    Phase before = phase_;
    switch (phase_) {
      case Phase::kHello:
      case Phase::kList:
      case Phase::kCommit: return;  // waiting for a reply
      case Phase::kFetch:
        if (!fetching_.empty() || !pending_local_.empty()) return;
        request_.reset();
        if (!fetch_queue_.empty()) {
          SendFetchBatch(now_ms);
          return;
        }
        StartMerge();
        break;
      case Phase::kMerge:
        if (quiet) StartNormalise();
        break;
      case Phase::kReplay:
        if (quiet) StartSwap(now_ms);
        break;
      case Phase::kSwap:
        if (complete_received_ && pending_local_.empty()) StartNormalise();
        break;
      case Phase::kNormalise:
        if (quiet) StartPull();
        break;
      case Phase::kPull:
        if (quiet) {
          if (kind_ == SyncKind::kInitial && !committed_) {
            StartCommit(now_ms);
          } else {
            Finish();
          }
        }
        break;
      case Phase::kDone: return;
    }
    if (phase_ == before) return;
  }
}

}  // namespace mobilesync::engine
