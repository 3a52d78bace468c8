// Scheduler (sans-I/O core) with a fake clock: coalescing, one session per
// user, the concurrency bound, periodic runs and retry backoff.
#include "sync_agent/scheduler.h"

#include <gtest/gtest.h>

#include <set>

namespace mobilesync::agent {
namespace {

SchedulerOptions Opts() {
  SchedulerOptions o;
  o.interval_ms = 60000;
  o.jitter = 0.1;
  o.coalesce_ms = 200;
  o.max_sessions = 2;
  o.retry_min_ms = 1000;
  o.retry_max_ms = 8000;
  return o;
}

TEST(Scheduler, FirstRunIsSpreadOverTheFirstInterval) {
  Scheduler s(Opts(), 42);
  for (int i = 0; i < 1000; ++i) s.AddUser("u" + std::to_string(i), 0);
  TimeMs lo = INT64_MAX, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    TimeMs d = s.Find("u" + std::to_string(i))->due;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GE(lo, 0);
  EXPECT_LT(hi, 60000);
  EXPECT_GT(hi - lo, 50000);  // spread, not a thundering herd
}

TEST(Scheduler, BurstOfPokesGivesOneSession) {
  Scheduler s(Opts(), 1);
  s.AddUser("alice", 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(s.Request("alice", SyncReason::kLocalChange, i));
  EXPECT_TRUE(s.TakeDue(150).empty());  // still coalescing
  auto due = s.TakeDue(200);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].first, "alice");
  EXPECT_EQ(due[0].second, SyncReason::kLocalChange);
  s.Finished("alice", true, 300);
  EXPECT_TRUE(s.TakeDue(10000).empty());  // no queue of 99 more runs
  EXPECT_EQ(s.Find("alice")->started, 1u);
}

TEST(Scheduler, RequestDuringSessionGivesExactlyOneFollowUp) {
  Scheduler s(Opts(), 1);
  s.AddUser("alice", 0);
  s.Request("alice", SyncReason::kLocalChange, 0);
  ASSERT_EQ(s.TakeDue(200).size(), 1u);
  for (int i = 0; i < 50; ++i) s.Request("alice", SyncReason::kLocalChange, 300 + i);
  EXPECT_TRUE(s.TakeDue(1000).empty());  // never two sessions for one user
  EXPECT_EQ(s.running(), 1u);
  s.Finished("alice", true, 1000);
  auto due = s.TakeDue(1200);
  ASSERT_EQ(due.size(), 1u);
  s.Finished("alice", true, 1300);
  EXPECT_TRUE(s.TakeDue(5000).empty());
  EXPECT_EQ(s.Find("alice")->started, 2u);
}

TEST(Scheduler, ConcurrencyIsBounded) {
  Scheduler s(Opts(), 1);
  for (const char* u : {"a", "b", "c", "d", "e"}) {
    s.AddUser(u, 0);
    s.Request(u, SyncReason::kServer, 0);
  }
  auto first = s.TakeDue(1000);
  EXPECT_EQ(first.size(), 2u);
  EXPECT_TRUE(s.TakeDue(1000).empty());
  EXPECT_FALSE(s.NextWakeup().has_value());  // full: wait for a Finished()
  s.Finished(first[0].first, true, 1100);
  auto next = s.TakeDue(1100);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(s.running(), 2u);
}

TEST(Scheduler, PeriodicRunsWithoutRequests) {
  Scheduler s(Opts(), 7);
  s.AddUser("alice", 0);
  TimeMs now = 0;
  int runs = 0;
  while (now < 10 * 60000) {
    std::optional<TimeMs> next = s.NextWakeup();
    ASSERT_TRUE(next.has_value());
    now = std::max(now, *next);
    auto due = s.TakeDue(now);
    ASSERT_EQ(due.size(), 1u);
    ++runs;
    TimeMs prev = now;
    s.Finished("alice", true, now);
    TimeMs gap = s.Find("alice")->due - prev;
    EXPECT_GE(gap, 54000);
    EXPECT_LE(gap, 66000);
  }
  EXPECT_GE(runs, 9);
  EXPECT_LE(runs, 12);
}

// A trigger that arrives while a session runs, followed by a poke, still
// gets its own urgent run after a failure (the poke once overwrote it and the
// follow-up waited out the backoff, named "retry"); and a poke during a
// retry's wait names that run "local change".
TEST(Scheduler, LaterPokeDoesNotHideAnEarlierTrigger) {
  Scheduler s(Opts(), 5);
  s.AddUser("bob", 0);
  s.Request("bob", SyncReason::kLocalChange, 0);
  ASSERT_EQ(s.TakeDue(200).size(), 1u);
  s.Request("bob", SyncReason::kTrigger, 250);
  s.Request("bob", SyncReason::kLocalChange, 260);
  s.Finished("bob", false, 300);
  auto due = s.TakeDue(500);
  ASSERT_EQ(due.size(), 1u) << "the trigger's run waited out the backoff";
  EXPECT_EQ(due[0].second, SyncReason::kTrigger);
  s.Finished("bob", false, 600);
  const TimeMs retry = s.Find("bob")->due;
  s.Request("bob", SyncReason::kLocalChange, retry - 10);
  due = s.TakeDue(retry);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].second, SyncReason::kLocalChange);
}

TEST(Scheduler, FailuresBackOffExponentiallyAndPokesDoNotShortenIt) {
  Scheduler s(Opts(), 3);
  s.AddUser("alice", 0);
  s.Request("alice", SyncReason::kOperator, 0);
  TimeMs now = 200;
  std::vector<TimeMs> delays;
  for (int i = 0; i < 6; ++i) {
    auto due = s.TakeDue(now);
    ASSERT_EQ(due.size(), 1u) << i;
    s.Finished("alice", false, now);
    TimeMs d = s.Find("alice")->due - now;
    delays.push_back(d);
    // A poke during the backoff does not bring the retry forward.
    s.Request("alice", SyncReason::kLocalChange, now + 1);
    EXPECT_EQ(s.Find("alice")->due - now, d);
    now += d;
  }
  EXPECT_GE(delays[0], 500);
  EXPECT_LE(delays[0], 1000);
  EXPECT_GE(delays[3], 4000);
  EXPECT_LE(delays[5], 8000);  // capped at retry_max
  // An operator request does cut the backoff short.
  s.TakeDue(now);
  s.Finished("alice", false, now);
  s.Request("alice", SyncReason::kOperator, now);
  EXPECT_EQ(s.Find("alice")->due, now) << "an operator's request is not coalesced";
  // Success resets the failure count.
  s.TakeDue(now);
  s.Finished("alice", true, now + 200);
  EXPECT_EQ(s.Find("alice")->failures, 0);
}

TEST(Scheduler, RemovedUserIsForgottenEvenWhileRunning) {
  Scheduler s(Opts(), 3);
  s.AddUser("alice", 0);
  s.Request("alice", SyncReason::kOperator, 0);
  ASSERT_EQ(s.TakeDue(200).size(), 1u);
  s.RemoveUser("alice");
  EXPECT_EQ(s.running(), 0u);
  s.Finished("alice", true, 300);  // ignored
  EXPECT_EQ(s.users(), 0u);
  EXPECT_FALSE(s.Request("alice", SyncReason::kLocalChange, 400));
}

TEST(Scheduler, TenThousandUsersAllRunOncePerInterval) {
  SchedulerOptions o = Opts();
  o.max_sessions = 16;
  Scheduler s(o, 9);
  for (int i = 0; i < 10000; ++i) s.AddUser("user" + std::to_string(i), 0);
  // 16 slots, sessions of 50 ms: capacity 320/s, the load is 167/s.
  std::set<std::string> ran;
  size_t sessions = 0;
  std::vector<std::string> running;
  for (TimeMs t = 0; t < 66000; t += 50) {
    for (auto& u : running) s.Finished(u, true, t);
    running.clear();
    for (auto& d : s.TakeDue(t)) {
      ran.insert(d.first);
      running.push_back(d.first);
      ++sessions;
    }
  }
  EXPECT_EQ(ran.size(), 10000u);
  EXPECT_LT(sessions, 12000u);  // about once per interval, not more
}

}  // namespace
}  // namespace mobilesync::agent
