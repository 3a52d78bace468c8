// When each user's sync session runs.
//
// Scheduler is the sans-I/O core: time is passed in (milliseconds on a
// monotonic clock), nothing sleeps or does I/O, so every rule is unit-tested
// with a fake clock. SchedulerDriver is the thin libevent adapter: one timer
// armed at NextWakeup(), and a deferred "kick" after every change.
//
// Rules:
//  * every enabled user runs every `interval` (+-jitter, so 10,000 users do
//    not all start in the same second); a new user's first run is spread
//    over the first interval;
//  * requests (pokes, trigger messages, the server, an operator) are
//    coalesced: a request makes the user due `coalesce` from now unless it
//    is already due sooner, so a burst of 100 pokes gives one session;
//  * at most one session per user: a request while it runs marks it for ONE
//    follow-up run right after;
//  * at most `max_sessions` run at once; due users wait in due order;
//  * a failed session is retried after a jittered exponential backoff
//    (retry_min doubling up to retry_max); pokes do not shorten a backoff
//    (a down server must not be hammered), an operator request does.
#ifndef MOBILESYNC_SYNC_AGENT_SCHEDULER_H_
#define MOBILESYNC_SYNC_AGENT_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/event_loop.h"

namespace mobilesync::agent {

using TimeMs = int64_t;

enum class SyncReason { kPeriodic, kLocalChange, kTrigger, kServer, kOperator, kRetry };
const char* SyncReasonName(SyncReason r);

struct SchedulerOptions {
  uint64_t interval_ms = 300000;
  double jitter = 0.1;  // periodic runs at interval * [1-jitter, 1+jitter]
  uint64_t coalesce_ms = 10;
  size_t max_sessions = 16;
  uint64_t retry_min_ms = 5000;
  uint64_t retry_max_ms = 600000;
};

class Scheduler {
 public:
  struct UserState {
    TimeMs due = 0;
    bool running = false;
    bool rerun = false;  // a request arrived during the running session
    int failures = 0;
    TimeMs backoff_until = 0;
    SyncReason reason = SyncReason::kPeriodic;  // why the next run happens
    uint64_t started = 0;                       // sessions started so far
  };

  explicit Scheduler(SchedulerOptions options, uint64_t seed = 0);

  void set_options(const SchedulerOptions& options) { options_ = options; }
  const SchedulerOptions& options() const { return options_; }

  // Adds a user; its first periodic run comes at a random point of the
  // first interval. No-op if known.
  void AddUser(const std::string& user, TimeMs now);
  // Forgets a user. A running session finishes; its Finished() is ignored.
  void RemoveUser(const std::string& user);
  // Asks for a run soon. Returns false if the user is unknown.
  bool Request(const std::string& user, SyncReason reason, TimeMs now);
  // Marks and returns the users whose session should start now (bounded by
  // max_sessions), earliest due first.
  std::vector<std::pair<std::string, SyncReason>> TakeDue(TimeMs now);
  // Reports the end of `user`'s session.
  void Finished(const std::string& user, bool ok, TimeMs now);
  // When TakeDue() may next return something; nullopt: nothing to do until
  // a request or a Finished().
  std::optional<TimeMs> NextWakeup() const;

  const UserState* Find(const std::string& user) const;
  size_t users() const { return users_.size(); }
  size_t running() const { return running_; }

 private:
  void SetDue(const std::string& user, UserState* st, TimeMs due);
  TimeMs Jittered(uint64_t base_ms, double lo, double hi);

  SchedulerOptions options_;
  std::mt19937_64 rng_;
  std::unordered_map<std::string, UserState> users_;
  // Users not running, by due time.
  std::set<std::pair<TimeMs, std::string>> queue_;
  size_t running_ = 0;
};

// Milliseconds on the monotonic clock.
TimeMs MonotonicMs();

// The libevent side: runs `start` for each due user and keeps one timer.
// `start(user, reason)` begins a session; the session's end must be
// reported with Finished(). `start` is never called re-entrantly from
// Finished() or Request(): those only schedule a kick on the loop.
class SchedulerDriver {
 public:
  using StartFn = std::function<void(const std::string& user, SyncReason reason)>;

  SchedulerDriver(event_base* base, Scheduler* scheduler, StartFn start);
  SchedulerDriver(const SchedulerDriver&) = delete;
  SchedulerDriver& operator=(const SchedulerDriver&) = delete;

  void AddUser(const std::string& user);
  void RemoveUser(const std::string& user);
  bool Request(const std::string& user, SyncReason reason);
  void Finished(const std::string& user, bool ok);
  // Stops starting sessions (shutdown).
  void Stop();
  // Schedules a run of the loop's due check.
  void Kick();

 private:
  static void OnTimer(evutil_socket_t, short, void* arg);
  void RunDue();

  Scheduler* scheduler_;
  StartFn start_;
  EventPtr timer_;
  bool stopped_ = false;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_SCHEDULER_H_
