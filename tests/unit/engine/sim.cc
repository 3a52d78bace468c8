#include "unit/engine/sim.h"

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>

namespace mobilesync::engine::sim {

LocalId SimLocal::AppendQuiet(const MessageMeta& meta) {
  uint32_t uid = next_uid++;
  messages[uid] = LocalMessage{IdOf(uid), meta};
  return IdOf(uid);
}

LocalId SimLocal::Deliver(const MessageMeta& meta) {
  LocalId id = AppendQuiet(meta);
  Action a;
  a.kind = ActionKind::kInsert;
  a.local = id;
  a.meta = meta;
  actions.Record(a);
  return id;
}

void SimLocal::SetState(LocalId id, MessageState state) {
  auto it = messages.find(id.uid);
  if (it == messages.end() || it->second.meta.state == state) return;
  if (state == MessageState::kDestroyed) {
    Destroy(id);
    return;
  }
  Action a;
  a.kind = StateChangeKind(it->second.meta.state, state);
  a.local = id;
  a.meta.state = state;
  it->second.meta.state = state;
  actions.Record(a);
}

void SimLocal::Destroy(LocalId id) {
  if (messages.erase(id.uid) == 0) return;
  Action a;
  a.kind = ActionKind::kDestroy;
  a.local = id;
  a.meta.state = MessageState::kDestroyed;
  actions.Record(a);
}

void SimLocal::FileSent(const MessageMeta& meta) {
  sent.insert(meta.match_key);
  Action a;
  a.kind = ActionKind::kFiledAsSent;
  a.meta = meta;
  actions.Record(a);
}

void SimLocal::RenumberUids() {
  std::map<uint32_t, LocalMessage> old;
  old.swap(messages);
  ++uidvalidity;
  next_uid = 1;
  for (auto& [uid, m] : old) AppendQuiet(m.meta);
  // Entries naming old uids are meaningless now (the plugin drops them);
  // a message filed as sent names no uid and stays.
  std::vector<uint64_t> drop;
  for (const Action& a : actions.entries()) {
    if (a.local.valid()) drop.push_back(a.seq);
  }
  for (uint64_t seq : drop) actions.Remove(seq);
}

const LocalMessage* SimLocal::Find(const LocalId& id) const {
  if (id.uidvalidity != uidvalidity || id.mailbox != mailbox) return nullptr;
  auto it = messages.find(id.uid);
  return it == messages.end() ? nullptr : &it->second;
}

const LocalMessage* SimLocal::FindByKey(const std::string& key) const {
  for (const auto& [uid, m] : messages) {
    if (m.meta.match_key == key) return &m;
  }
  return nullptr;
}

AgentSnapshot SimLocal::Snapshot() const {
  AgentSnapshot s;
  s.generation = generation;
  s.map = map;
  s.actions = actions.entries();
  for (const auto& [uid, m] : messages) s.messages.push_back(m);
  s.uidvalidity = uidvalidity;
  return s;
}

namespace {

struct Completion {
  uint64_t tag;
  LocalId id;
};

class Driver {
 public:
  Driver(SimLocal* local, RemoteStore* store, const RunOptions& options,
         std::mt19937_64* rng)
      : local_(local),
        store_(store),
        options_(options),
        rng_(rng),
        session_(local->Snapshot(), options.session),
        server_(store, options.server_in_flight) {}

  RunResult Run() {
    if (!Exec(session_.Start(now_))) return Crashed();
    while (!session_.done()) {
      if (++result_.events > 2000000) {
        result_.status = Status::Aborted("simulation: no progress");
        return result_;
      }
      ++now_;
      SyncSession::Phase before = session_.phase();
      std::vector<Op> ops;
      switch (PickEvent()) {
        case 0: {  // the server gets a frame
          Frame f = to_server_.front();
          to_server_.pop_front();
          if (Roll(options_.faults.crash)) return Crashed();
          std::vector<Frame> replies = server_.OnFrame(f);
          if (Roll(options_.faults.crash)) return Crashed();
          for (Frame& r : replies) Transmit(std::move(r), &to_agent_);
          break;
        }
        case 1: {  // the agent gets a frame
          Frame f = to_agent_.front();
          to_agent_.pop_front();
          ops = session_.OnFrame(f, now_);
          break;
        }
        case 2: {  // a mailbox op finished
          Completion c = completions_.front();
          completions_.pop_front();
          ops = session_.OnLocalApplied(c.tag, Status::OK(), c.id, now_);
          break;
        }
        default: {
          std::optional<int64_t> d = session_.next_deadline();
          if (!d) {
            result_.status = Status::Aborted("simulation: session is stuck");
            return result_;
          }
          if (*d > now_) now_ = *d;
          ops = session_.OnTimer(now_);
          break;
        }
      }
      if (!Exec(std::move(ops))) return Crashed();
      if (options_.observer && session_.phase() != before) {
        options_.observer(before, session_);
      }
    }
    result_.kind = session_.kind();
    result_.status = session_.status();
    return result_;
  }

 private:
  bool Roll(double p) {
    if (rng_ == nullptr || p <= 0) return false;
    return std::uniform_real_distribution<double>(0, 1)(*rng_) < p;
  }

  RunResult Crashed() {
    result_.crashed = true;
    result_.kind = session_.kind();
    result_.status = Status::Aborted("crashed");
    return result_;
  }

  // 0: to server, 1: to agent, 2: mailbox completion, 3: time-out.
  int PickEvent() {
    int choices[3];
    int n = 0;
    if (!to_server_.empty()) choices[n++] = 0;
    if (!to_agent_.empty()) choices[n++] = 1;
    if (!completions_.empty()) choices[n++] = 2;
    if (n == 0) return 3;
    if (rng_ == nullptr) return choices[0];
    return choices[std::uniform_int_distribution<int>(0, n - 1)(*rng_)];
  }

  void Transmit(Frame f, std::deque<Frame>* q) {
    if (Roll(options_.faults.drop)) return;
    if (Roll(options_.faults.dup)) q->push_back(f);
    q->push_back(std::move(f));
  }

  // Carries out ops in order; false when the process "crashed" part-way.
  bool Exec(std::vector<Op> ops) {
    for (Op& op : ops) {
      if (Roll(options_.faults.crash)) return false;
      switch (op.kind) {
        case OpKind::kSend:
          Transmit(std::move(op.frame), &to_server_);
          break;
        case OpKind::kAppendLocal:
          completions_.push_back({op.tag, local_->AppendQuiet(op.message.meta)});
          break;
        case OpKind::kSetLocalState: {
          auto it = local_->messages.find(op.local.uid);
          if (local_->Find(op.local) != nullptr) {
            it->second.meta.state = op.state;
          }
          completions_.push_back({op.tag, {}});
          break;
        }
        case OpKind::kDestroyLocal:
          if (local_->Find(op.local) != nullptr) {
            local_->messages.erase(op.local.uid);
          }
          completions_.push_back({op.tag, {}});
          break;
        case OpKind::kSubmitMessage:
        case OpKind::kFileInSent:
          local_->sent.insert(op.message.meta.match_key);
          completions_.push_back({op.tag, {}});
          break;
        case OpKind::kPutMapping: {
          Status s = local_->map.Put(op.local, op.remote);
          if (!s.ok()) result_.reports.push_back("BUG put-mapping: " +
                                                 s.ToString());
          break;
        }
        case OpKind::kRemoveMapping:
          local_->map.RemoveByLocal(op.local);
          break;
        case OpKind::kDeleteActionEntry:
          local_->actions.Remove(op.seq);
          break;
        case OpKind::kSetGeneration:
          local_->generation = op.generation;
          break;
        case OpKind::kReport:
          result_.reports.push_back(std::move(op.note));
          break;
        case OpKind::kDone:
          break;
      }
    }
    return true;
  }

  SimLocal* local_;
  RemoteStore* store_;
  RunOptions options_;
  std::mt19937_64* rng_;
  SyncSession session_;
  ServerSession server_;
  int64_t now_ = 0;
  std::deque<Frame> to_server_;
  std::deque<Frame> to_agent_;
  std::deque<Completion> completions_;
  RunResult result_;
};

}  // namespace

RunResult RunSession(SimLocal* local, RemoteStore* store,
                     const RunOptions& options, std::mt19937_64* rng) {
  Driver d(local, store, options, rng);
  return d.Run();
}

int SyncUntilDone(SimLocal* local, RemoteStore* store,
                  const RunOptions& options, std::mt19937_64* rng,
                  int max_faulty) {
  RunOptions clean = options;
  clean.faults = Faults{};
  for (int i = 1;; ++i) {
    const RunOptions& o = i <= max_faulty ? options : clean;
    RunResult r = RunSession(local, store, o, rng);
    if (std::getenv("MS_ENGINE_TRACE") != nullptr) {
      std::fprintf(stderr, "session %d: %s after %zu events\n", i,
                   r.status.ToString().c_str(), r.events);
      for (const std::string& note : r.reports) {
        std::fprintf(stderr, "  %s\n", note.c_str());
      }
    }
    if (!r.crashed && r.status.ok()) return i;
    if (i > max_faulty + 3) return -i;
  }
}

}  // namespace mobilesync::engine::sim
