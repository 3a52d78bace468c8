// Limits under load (issue 10): many users with changes at once on one
// agent and one server, real processes.
//
// USERS users (MS_LOAD_USERS; scripts/test.sh: 100, tests/fault/run-long.sh:
// 1000) are enabled in Dovecot's userdb. Each gets two messages by LMTP
// (the plugin pokes the agent, which enables the user at the first poke and
// syncs) and one new message on the phone side (the server asks the agent
// to sync it) at about the same time. Then:
//
//   - no session starves: every user converges (both local messages on the
//     device, the phone's message in Dovecot, each once) within the
//     deadline (MS_LOAD_DEADLINE_S, default 4 s per user + 60 s);
//   - the agent's file descriptors stay bounded by its pools, not by the
//     number of users (max_sessions 16, imap_max_idle 64: at most 160);
//   - the server's file descriptors likewise (one agent connection: 64);
//   - peak RSS (VmHWM) of agent and server stays under MS_LOAD_MAX_RSS_MB
//     (default 600 MB: an ASan build keeps freed memory in quarantine).
//
// The figures (peak RSS, peak fds, time to converge, slowest user) are
// printed for docs/reliability.md.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include "harness/system_fixture.h"
#include "harness/tcp_proxy.h"

namespace mobilesync::testing {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

std::string UserName(int i) {
  char buf[16];
  snprintf(buf, sizeof buf, "u%04d", i);
  return buf;
}

// Samples a process's resources every 100 ms until stopped; keeps peaks.
class Sampler {
 public:
  explicit Sampler(pid_t pid) : pid_(pid), thread_([this] { Run(); }) {}
  ~Sampler() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t max_fds() const { return max_fds_; }
  uint64_t max_rss_kb() const { return max_rss_; }
  uint64_t hwm_kb() const { return hwm_; }
  uint64_t samples() const { return samples_; }

 private:
  void Run() {
    while (!stop_) {
      ProcessResources r;
      if (ReadProcessResources(pid_, &r).ok()) {
        max_fds_ = std::max<uint64_t>(max_fds_, r.fds);
        max_rss_ = std::max<uint64_t>(max_rss_, r.rss_kb);
        hwm_ = std::max<uint64_t>(hwm_, r.hwm_kb);
        ++samples_;
      }
      // The sampling period, not a wait for a condition.
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> max_fds_{0}, max_rss_{0}, hwm_{0}, samples_{0};
  std::thread thread_;
};

TEST(LoadTest, ManyUsersAtOnceConvergeWithBoundedResources) {
  const int users = EnvInt("MS_LOAD_USERS", 100);
  const int deadline_s = EnvInt("MS_LOAD_DEADLINE_S", 60 + 4 * users);
  const uint64_t max_rss_mb = static_cast<uint64_t>(EnvInt("MS_LOAD_MAX_RSS_MB", 600));
  SystemOptions o;
  o.users.clear();
  o.windows.clear();
  for (int i = 0; i < users; ++i) {
    o.users.push_back(UserName(i));
    o.windows[UserName(i)] = 10;
  }
  o.log_level = "info";
  o.enable_users = false;  // the plugin's first poke enables each user
  o.sync_interval = "1h";  // only the changes drive sessions
  o.max_sessions = 16;     // the product's default
  o.imap_timeout = "60s";
  MobilesyncSystem sys;
  Status s = sys.Start(o);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Sampler agent(sys.agent_pid()), server(sys.server_pid());

  const auto start = std::chrono::steady_clock::now();
  // Changes on both sides for every user, as fast as we can make them.
  for (int i = 0; i < users; ++i) {
    const std::string u = UserName(i);
    ASSERT_TRUE(sys.Deliver(u, u + "-local-1").ok()) << u;
    uint64_t id = 0;
    ASSERT_TRUE(sys.DeviceInject(u, u + "-phone", time(nullptr) - 60, &id).ok()) << u;
  }
  for (int i = 0; i < users; ++i) {
    ASSERT_TRUE(sys.Deliver(UserName(i), UserName(i) + "-local-2").ok());
  }
  const auto changed = std::chrono::steady_clock::now();

  // Every user, checked round after round until converged.
  std::map<std::string, double> converged_at;  // user -> seconds after start
  auto converged = [&](const std::string& u) {
    std::vector<DeviceMessage> dev;
    std::vector<ImapMessage> inbox;
    if (!sys.DeviceList(u, &dev).ok() || !sys.ImapList(u, "INBOX", &inbox).ok()) return false;
    std::map<std::string, int> d, l;
    for (const auto& m : dev) ++d[m.subject];
    for (const auto& m : inbox) ++l[m.subject];
    for (const std::string& subject : {u + "-local-1", u + "-local-2", u + "-phone"}) {
      if (d[subject] != 1 || l[subject] != 1) return false;
    }
    return dev.size() == 3 && inbox.size() == 3;
  };
  const bool all = MobilesyncSystem::Within(milliseconds(deadline_s * 1000), [&] {
    for (int i = 0; i < users; ++i) {
      const std::string u = UserName(i);
      if (converged_at.count(u) != 0 || !converged(u)) continue;
      converged_at[u] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return converged_at.size() == static_cast<size_t>(users);
  });
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  agent.Stop();
  server.Stop();
  std::string slowest;
  double slowest_s = 0;
  for (const auto& [u, t] : converged_at) {
    if (t > slowest_s) {
      slowest_s = t;
      slowest = u;
    }
  }
  std::string missing;
  for (int i = 0; i < users && missing.size() < 400; ++i) {
    if (converged_at.count(UserName(i)) == 0) missing += UserName(i) + " ";
  }
  EXPECT_TRUE(all) << converged_at.size() << " of " << users << " users converged within "
                   << deadline_s << " s; not: " << missing << "\n"
                   << sys.Logs(3000);
  // Bounded by the pools, not by the number of users.
  EXPECT_GT(agent.samples(), 0u);
  EXPECT_LE(agent.max_fds(), 160u);
  EXPECT_LE(server.max_fds(), 64u);
  EXPECT_LE(agent.hwm_kb() / 1024, max_rss_mb);
  EXPECT_LE(server.hwm_kb() / 1024, max_rss_mb);
  const std::string log = sys.AgentLog();
  size_t ok = 0, failed = 0;
  for (size_t p = log.find("session finished: ok"); p != std::string::npos;
       p = log.find("session finished: ok", p + 1)) {
    ++ok;
  }
  for (size_t p = log.find("session failed"); p != std::string::npos;
       p = log.find("session failed", p + 1)) {
    ++failed;
  }
  std::printf(
      "load: %d users, changes made in %.1f s, all converged after %.1f s (slowest %s at %.1f "
      "s); sessions ok %zu, failed %zu; agent peak fds %llu, peak RSS %llu MB (VmHWM); server "
      "peak fds %llu, peak RSS %llu MB\n",
      users, std::chrono::duration<double>(changed - start).count(), total, slowest.c_str(),
      slowest_s, ok, failed, static_cast<unsigned long long>(agent.max_fds()),
      static_cast<unsigned long long>(agent.hwm_kb() / 1024),
      static_cast<unsigned long long>(server.max_fds()),
      static_cast<unsigned long long>(server.hwm_kb() / 1024));
}

}  // namespace
}  // namespace mobilesync::testing
