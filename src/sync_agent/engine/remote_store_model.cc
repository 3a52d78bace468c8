#include "sync_agent/engine/remote_store_model.h"

#include <algorithm>
#include <set>
#include <utility>

namespace mobilesync::engine {

namespace {

Action Subject(RemoteId id) {
  Action a;
  a.remote = id;
  return a;
}

}  // namespace

RemoteStore::RemoteStore(const RemoteStoreOptions& options, IdAllocator ids)
    : options_(options), ids_(std::move(ids)) {}

RemoteId RemoteStore::NewId() {
  if (ids_) return ids_();
  return next_id_++;
}

RemoteId RemoteStore::DeviceDeliver(const MessageMeta& meta) {
  RemoteMessage m{NewId(), meta};
  messages_.emplace(m.id, m);
  by_key_[meta.match_key] = m.id;
  Action a;
  a.kind = ActionKind::kInsert;
  a.remote = m.id;
  a.meta = meta;
  actions_.Record(a);
  CollectGarbage();
  return m.id;
}

Status RemoteStore::DeviceSetState(RemoteId id, MessageState state) {
  auto it = messages_.find(id);
  if (it == messages_.end()) {
    return Status::NotFound("no such message", std::to_string(id));
  }
  if (state == MessageState::kDestroyed) return DeviceDestroy(id);
  if (it->second.meta.state == state) return Status::OK();
  Action a;
  a.kind = StateChangeKind(it->second.meta.state, state);
  a.remote = id;
  a.meta.state = state;
  it->second.meta.state = state;
  actions_.Record(a);
  return Status::OK();
}

Status RemoteStore::DeviceDestroy(RemoteId id) {
  if (messages_.count(id) == 0) {
    return Status::NotFound("no such message", std::to_string(id));
  }
  EraseMessage(id);
  Action a;
  a.kind = ActionKind::kDestroy;
  a.remote = id;
  a.meta.state = MessageState::kDestroyed;
  actions_.Record(a);
  return Status::OK();
}

RemoteId RemoteStore::DeviceCompose(const MessageMeta& meta) {
  Action a;
  a.kind = ActionKind::kDeliver;
  a.remote = NewId();
  a.meta = meta;
  actions_.Record(a);
  return a.remote;
}

void RemoteStore::CollectGarbage() {
  std::vector<RemoteMessage> all;
  all.reserve(messages_.size());
  for (const auto& [id, m] : messages_) all.push_back(m);
  std::set<RemoteId> keep;
  for (size_t i : SelectWindow(all, options_.window)) keep.insert(all[i].id);
  std::sort(all.begin(), all.end(), [](const RemoteMessage& a,
                                       const RemoteMessage& b) {
    return NewerFirst(b.meta, a.meta);  // oldest first
  });
  for (const RemoteMessage& m : all) {
    if (keep.count(m.id) != 0 || actions_.HasPendingInsert(Subject(m.id))) {
      continue;
    }
    EraseMessage(m.id);
    Action a;
    a.kind = ActionKind::kUnmap;
    a.remote = m.id;
    actions_.Record(a);
  }
}

void RemoteStore::EraseMessage(RemoteId id) {
  auto it = messages_.find(id);
  if (it == messages_.end()) return;
  auto k = by_key_.find(it->second.meta.match_key);
  if (k != by_key_.end() && k->second == id) by_key_.erase(k);
  messages_.erase(it);
}

AckOutcome RemoteStore::ApplyState(RemoteId id, MessageState state,
                                   ConflictPolicy policy, std::string* note) {
  const Action* own = actions_.PendingChange(Subject(id));
  if (own != nullptr) {
    // Both sides changed the message since the last sync.
    MessageState own_state = own->kind == ActionKind::kDestroy
                                 ? MessageState::kDestroyed
                                 : own->meta.state;
    MessageState winner = ResolveConflict(state, own_state, policy);
    if (winner != state) {
      *note = "remote " + std::to_string(id) + ": local " +
              MessageStateName(state) + " lost to remote " +
              MessageStateName(own_state);
      return AckOutcome::kSuperseded;
    }
    // The agent's change won: our own change must not travel back and
    // overwrite it after the swap.
    actions_.RemoveStateChanges(Subject(id));
  }
  auto it = messages_.find(id);
  if (it == messages_.end()) {
    *note = "remote " + std::to_string(id) + " is not in the window";
    return own != nullptr ? AckOutcome::kApplied : AckOutcome::kNoop;
  }
  it->second.meta.state = state;
  return AckOutcome::kApplied;
}

AckOutcome RemoteStore::ApplyAgentAction(const Action& action,
                                         ConflictPolicy policy,
                                         RemoteId* assigned,
                                         std::string* note) {
  *assigned = kNoRemoteId;
  switch (action.kind) {
    case ActionKind::kInsert: {
      auto k = by_key_.find(action.meta.match_key);
      if (k != by_key_.end()) {
        // Already here: an earlier attempt's ack was lost, or the message
        // reached both sides. Same id; the agent's state is still news.
        *assigned = k->second;
        if (messages_.at(k->second).meta.state != action.meta.state) {
          std::string ignored;
          // The outcome is the insert's: it is here either way.
          (void)ApplyState(k->second, action.meta.state, policy, &ignored);
        }
        return AckOutcome::kApplied;
      }
      RemoteMessage m{NewId(), action.meta};
      messages_.emplace(m.id, m);
      by_key_[m.meta.match_key] = m.id;
      *assigned = m.id;
      return AckOutcome::kApplied;
    }
    case ActionKind::kMarkRead:
    case ActionKind::kMarkUnread:
    case ActionKind::kMoveToTrash:
    case ActionKind::kRestoreFromTrash:
      return ApplyState(action.remote, action.meta.state, policy, note);
    case ActionKind::kDestroy: {
      // A destroy wins every conflict: drop our pending changes of it.
      actions_.RemoveStateChanges(Subject(action.remote));
      if (messages_.count(action.remote) == 0) {
        *note = "destroy of remote " + std::to_string(action.remote) +
                ": not in the window";
        return AckOutcome::kNoop;
      }
      EraseMessage(action.remote);
      return AckOutcome::kApplied;
    }
    case ActionKind::kUnmap:
      if (messages_.count(action.remote) == 0) {
        *note = "unmap of remote " + std::to_string(action.remote) +
                ": not in the window";
        return AckOutcome::kNoop;
      }
      EraseMessage(action.remote);
      return AckOutcome::kApplied;
    case ActionKind::kFiledAsSent:
      sent_keys_.insert(action.meta.match_key);
      return AckOutcome::kApplied;
    case ActionKind::kDeliver:
      break;
  }
  *note = std::string(ActionKindName(action.kind)) +
          " is not an agent action";
  return AckOutcome::kRejected;
}

void RemoteStore::Commit(SyncGeneration generation) {
  if (generation_ == generation) return;  // a repeated commit
  generation_ = generation;
  // Keep only what the list comparison cannot have covered: messages
  // composed on the phone, still to be delivered through the organisation.
  actions_.Retain(
      [](const Action& a) { return a.kind == ActionKind::kDeliver; });
}

const RemoteMessage* RemoteStore::Find(RemoteId id) const {
  auto it = messages_.find(id);
  return it == messages_.end() ? nullptr : &it->second;
}

std::vector<RemoteMessage> RemoteStore::Window() const {
  std::vector<RemoteMessage> out;
  out.reserve(messages_.size());
  for (const auto& [id, m] : messages_) out.push_back(m);
  std::sort(out.begin(), out.end(), [](const RemoteMessage& a,
                                       const RemoteMessage& b) {
    return NewerFirst(a.meta, b.meta);
  });
  return out;
}

// --- ServerSession -----------------------------------------------------------

ServerSession::ServerSession(RemoteStore* store, size_t max_in_flight)
    : store_(store),
      conflict_(store->options().conflict),
      // The agent drives every time-out: no timer here.
      window_(FlightOptions{max_in_flight, 0, 1}) {}

Frame ServerSession::ActionFrame(uint64_t tag, uint64_t seq) const {
  Frame f;
  f.kind = FrameKind::kAction;
  f.tag = tag;
  for (const Action& a : store_->actions().entries()) {
    if (a.seq == seq) {
      f.action = a;
      break;
    }
  }
  return f;
}

void ServerSession::Pump(std::vector<Frame>* out) {
  for (const ActionWindow::Entry& e : window_.TakeSendable(0)) {
    out->push_back(ActionFrame(e.tag, e.payload));
  }
  if (window_.idle()) {
    Frame done;
    done.kind = FrameKind::kSyncComplete;
    out->push_back(done);
  }
}

std::vector<Frame> ServerSession::OnFrame(const Frame& in) {
  std::vector<Frame> out;
  switch (in.kind) {
    case FrameKind::kHello: {
      conflict_ = in.conflict;
      Frame f;
      f.kind = FrameKind::kHelloReply;
      f.generation = store_->generation();
      f.window_size = store_->options().window.size;
      f.window_count = static_cast<uint32_t>(store_->window_count());
      out.push_back(f);
      break;
    }
    case FrameKind::kListRequest: {
      Frame f;
      f.kind = FrameKind::kList;
      f.messages = store_->Window();
      out.push_back(std::move(f));
      break;
    }
    case FrameKind::kFetch:
      for (RemoteId id : in.ids) {
        Frame f;
        f.kind = FrameKind::kFetched;
        f.ids.push_back(id);
        const RemoteMessage* m = store_->Find(id);
        if (m == nullptr) {
          f.missing = true;
        } else {
          f.messages.push_back(*m);
        }
        out.push_back(std::move(f));
      }
      break;
    case FrameKind::kAction: {
      Frame ack;
      ack.kind = FrameKind::kAck;
      ack.tag = in.tag;
      std::string note;
      ack.outcome =
          store_->ApplyAgentAction(in.action, conflict_, &ack.remote, &note);
      if (!note.empty()) reports_.push_back(std::move(note));
      out.push_back(ack);
      break;
    }
    case FrameKind::kSwap:
      if (!swapping_) {
        // Our action list is final now: the agent's replay (which may have
        // removed entries that lost a conflict) is over.
        swapping_ = true;
        for (const Action& a : store_->actions().entries()) {
          window_.Enqueue(std::to_string(a.remote), a.seq);
        }
      } else {
        // The agent timed out: re-send whatever it has not acknowledged.
        for (const ActionWindow::Entry& e : window_.RestartAll(0)) {
          out.push_back(ActionFrame(e.tag, e.payload));
        }
      }
      Pump(&out);
      break;
    case FrameKind::kAck:
      if (std::optional<size_t> seq = window_.Complete(in.tag)) {
        store_->actions().Remove(*seq);
        if (swapping_) Pump(&out);
      }
      break;
    case FrameKind::kNack:
      // The agent could not apply it now; its swap time-out makes us re-send.
      break;
    case FrameKind::kCommit: {
      store_->Commit(in.generation);
      Frame f;
      f.kind = FrameKind::kCommitAck;
      f.generation = in.generation;
      out.push_back(f);
      break;
    }
    default:
      reports_.push_back(std::string("unexpected frame from the agent: ") +
                         FrameKindName(in.kind));
      break;
  }
  return out;
}

}  // namespace mobilesync::engine
