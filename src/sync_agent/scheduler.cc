#include "sync_agent/scheduler.h"

#include <algorithm>
#include <chrono>

namespace mobilesync::agent {

const char* SyncReasonName(SyncReason r) {
  switch (r) {
    case SyncReason::kPeriodic: return "periodic";
    case SyncReason::kLocalChange: return "local change";
    case SyncReason::kTrigger: return "trigger message";
    case SyncReason::kServer: return "server request";
    case SyncReason::kOperator: return "operator";
    case SyncReason::kRetry: return "retry";
  }
  return "?";
}

TimeMs MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Scheduler::Scheduler(SchedulerOptions options, uint64_t seed)
    : options_(options), rng_(seed ? seed : std::random_device{}()) {}

TimeMs Scheduler::Jittered(uint64_t base_ms, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  return static_cast<TimeMs>(static_cast<double>(base_ms) * d(rng_));
}

void Scheduler::SetDue(const std::string& user, UserState* st, TimeMs due) {
  if (!st->running) queue_.erase({st->due, user});
  st->due = due;
  if (!st->running) queue_.insert({st->due, user});
}

void Scheduler::AddUser(const std::string& user, TimeMs now) {
  if (users_.count(user)) return;
  UserState& st = users_[user];
  st.due = now + Jittered(options_.interval_ms, 0.0, 1.0);
  queue_.insert({st.due, user});
}

void Scheduler::RemoveUser(const std::string& user) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  if (it->second.running) {
    --running_;
  } else {
    queue_.erase({it->second.due, user});
  }
  users_.erase(it);
}

namespace {

// How much a reason says about a run: someone waiting beats a local change,
// which beats a retry, which beats the periodic run.
int Rank(SyncReason r) {
  switch (r) {
    case SyncReason::kTrigger:
    case SyncReason::kOperator:
    case SyncReason::kServer: return 3;
    case SyncReason::kLocalChange: return 2;
    case SyncReason::kRetry: return 1;
    case SyncReason::kPeriodic: return 0;
  }
  return 0;
}

}  // namespace

bool Scheduler::Request(const std::string& user, SyncReason reason, TimeMs now) {
  auto it = users_.find(user);
  if (it == users_.end()) return false;
  UserState& st = it->second;
  // An operator, a trigger message or the server asking: someone is waiting
  // now, so a failure backoff (e.g. the server was unreachable) is lifted.
  if (reason == SyncReason::kOperator || reason == SyncReason::kTrigger ||
      reason == SyncReason::kServer) {
    st.backoff_until = 0;
  }
  if (st.running) {
    // One follow-up run, however many requests arrive meanwhile; a poke
    // after a trigger must not make it forget that someone waits.
    if (!st.rerun || Rank(reason) > Rank(st.reason)) st.reason = reason;
    st.rerun = true;
    return true;
  }
  // An operator asks once and waits: no burst to coalesce.
  const TimeMs delay =
      reason == SyncReason::kOperator ? 0 : static_cast<TimeMs>(options_.coalesce_ms);
  TimeMs target = std::max<TimeMs>(now + delay, st.backoff_until);
  if (target < st.due) {
    st.reason = reason;
    SetDue(user, &st, target);
  } else if (Rank(reason) > Rank(st.reason)) {
    // Due sooner anyway (e.g. a retry): that run serves this request. It
    // must know when someone waits (an urgent session reconnects at once),
    // and its log line names the weightiest reason.
    st.reason = reason;
  }
  return true;
}

std::vector<std::pair<std::string, SyncReason>> Scheduler::TakeDue(TimeMs now) {
  std::vector<std::pair<std::string, SyncReason>> out;
  while (running_ < options_.max_sessions && !queue_.empty() && queue_.begin()->first <= now) {
    std::string user = queue_.begin()->second;
    queue_.erase(queue_.begin());
    UserState& st = users_[user];
    st.running = true;
    ++st.started;
    ++running_;
    out.emplace_back(user, st.reason);
    st.reason = SyncReason::kPeriodic;
  }
  return out;
}

void Scheduler::Finished(const std::string& user, bool ok, TimeMs now) {
  auto it = users_.find(user);
  if (it == users_.end() || !it->second.running) return;  // removed meanwhile
  UserState& st = it->second;
  st.running = false;
  --running_;
  // While it ran, a request may have asked for one more run (st.reason is
  // then that request's reason).
  const bool rerun = st.rerun;
  const SyncReason rerun_reason = st.reason;
  if (ok) {
    st.failures = 0;
    st.backoff_until = 0;
    st.due = now + Jittered(options_.interval_ms, 1.0 - options_.jitter, 1.0 + options_.jitter);
  } else {
    ++st.failures;
    uint64_t delay = options_.retry_min_ms;
    for (int i = 1; i < st.failures && delay < options_.retry_max_ms; ++i) delay *= 2;
    delay = std::min<uint64_t>(delay, options_.retry_max_ms);
    st.backoff_until = now + Jittered(delay, 0.5, 1.0);
    st.due = st.backoff_until;
    st.reason = SyncReason::kRetry;
  }
  if (rerun) {
    st.rerun = false;
    // Someone is waiting (a trigger, an operator, the server): run again
    // now, failure backoff or not. A poke waits out the backoff.
    const bool urgent = rerun_reason == SyncReason::kTrigger ||
                        rerun_reason == SyncReason::kOperator ||
                        rerun_reason == SyncReason::kServer;
    TimeMs soon = now + static_cast<TimeMs>(options_.coalesce_ms);
    if (!urgent) soon = std::max<TimeMs>(soon, st.backoff_until);
    if (urgent) st.backoff_until = 0;
    if (soon < st.due) st.due = soon;
    if (urgent) {
      st.reason = rerun_reason;
    } else if (ok) {
      st.reason = SyncReason::kLocalChange;
    }
  }
  queue_.insert({st.due, user});
}

std::optional<TimeMs> Scheduler::NextWakeup() const {
  if (queue_.empty() || running_ >= options_.max_sessions) return std::nullopt;
  return queue_.begin()->first;
}

const Scheduler::UserState* Scheduler::Find(const std::string& user) const {
  auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

// --- SchedulerDriver ----------------------------------------------------------

SchedulerDriver::SchedulerDriver(event_base* base, Scheduler* scheduler, StartFn start)
    : scheduler_(scheduler),
      start_(std::move(start)),
      timer_(evtimer_new(base, &SchedulerDriver::OnTimer, this)) {}

void SchedulerDriver::OnTimer(evutil_socket_t, short, void* arg) {
  static_cast<SchedulerDriver*>(arg)->RunDue();
}

void SchedulerDriver::Kick() {
  if (stopped_) return;
  timeval zero = {0, 0};
  evtimer_add(timer_.get(), &zero);
}

void SchedulerDriver::RunDue() {
  if (stopped_) return;
  TimeMs now = MonotonicMs();
  for (auto& [user, reason] : scheduler_->TakeDue(now)) start_(user, reason);
  if (stopped_) return;
  std::optional<TimeMs> next = scheduler_->NextWakeup();
  if (!next) {
    evtimer_del(timer_.get());
    return;
  }
  TimeMs wait = std::max<TimeMs>(*next - MonotonicMs(), 0);
  timeval tv = {static_cast<time_t>(wait / 1000), static_cast<suseconds_t>((wait % 1000) * 1000)};
  evtimer_add(timer_.get(), &tv);
}

void SchedulerDriver::AddUser(const std::string& user) {
  scheduler_->AddUser(user, MonotonicMs());
  Kick();
}

void SchedulerDriver::RemoveUser(const std::string& user) {
  scheduler_->RemoveUser(user);
  Kick();
}

bool SchedulerDriver::Request(const std::string& user, SyncReason reason) {
  bool known = scheduler_->Request(user, reason, MonotonicMs());
  Kick();
  return known;
}

void SchedulerDriver::Finished(const std::string& user, bool ok) {
  scheduler_->Finished(user, ok, MonotonicMs());
  Kick();
}

void SchedulerDriver::Stop() {
  stopped_ = true;
  evtimer_del(timer_.get());
}

}  // namespace mobilesync::agent
