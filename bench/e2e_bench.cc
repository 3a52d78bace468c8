// End-to-end figures of issue 8 on the real system (tests/harness
// MobilesyncSystem: Dovecot + plugin, mobilesync-server, mobilesync-agent on
// loopback):
//
//   1. push latency: LMTP delivery start -> the message is in the device's
//      list (GET /v1/messages), one delivery at a time;
//   2. read latency: POST /v1/messages/ID/read on the device -> \Seen in
//      Dovecot over IMAP;
//   3. update sync of 100 changes: one IMAP STORE marks 100 mapped messages
//      read (one poke), timed to all 100 read on the device, and the agent's
//      own session time from its log.
//
// A program, not a timed test: run it from a build without sanitizers and
// paste its output into bench/RESULTS.md with the command line.
//
//   bench/e2e_bench [--deliveries N] [--reads N] [--window N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "harness/system_fixture.h"
#include "sync_server/device_client.h"

namespace {

using mobilesync::Status;
using mobilesync::testing::DeviceToken;
using mobilesync::testing::ImapResponse;
using mobilesync::testing::ImapTestClient;
using mobilesync::testing::MobilesyncSystem;
using mobilesync::testing::SystemOptions;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Stats {
  std::vector<double> v;
  double Pct(double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  }
  void Print(const char* what) {
    std::printf("%-34s n=%zu  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", what, v.size(),
                Pct(50), Pct(90), Pct(99), Pct(100));
  }
};

// The device's list, parsed; empty on failure.
nlohmann::json DeviceMessages(const MobilesyncSystem& sys, const std::string& user) {
  mobilesync::server::HttpResponse r;
  Status s = mobilesync::server::HttpCall("127.0.0.1", sys.api_port(), "GET", "/v1/messages",
                                          DeviceToken(user), "", &r, 5000);
  if (!s.ok() || r.status != 200) return nlohmann::json::array();
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("messages")) return nlohmann::json::array();
  return j["messages"];
}

bool Poll(double timeout_ms, const std::function<bool()>& cond) {
  Clock::time_point end =
      Clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_ms * 1000));
  while (Clock::now() < end) {
    if (cond()) return true;
    // A polling interval, not a wait for the condition: 1 ms bounds the
    // measurement error and keeps the poller from starving the system.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

int Fail(const std::string& what, MobilesyncSystem& sys) {
  std::fprintf(stderr, "e2e_bench: %s\n%s\n", what.c_str(), sys.Logs(4000).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int deliveries = 1000, reads = 200;
  uint32_t window = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--deliveries"))
      deliveries = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reads"))
      reads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--window"))
      window = static_cast<uint32_t>(std::atoi(argv[i + 1]));
  }
  // The 100-change update needs 100 mapped messages still unread after the
  // read-latency part.
  if (window < 100 + static_cast<uint32_t>(reads)) window = 100 + static_cast<uint32_t>(reads);
  SystemOptions o;
  o.windows = {{"alice", window}, {"bob", 6}};
  o.log_level = "info";
  o.coalesce_delay = "10ms";
  o.sync_interval = "1h";
  MobilesyncSystem sys;
  Status s = sys.Start(o);
  if (!s.ok()) return Fail("start: " + s.ToString(), sys);
  s = sys.SyncWait("alice");
  if (!s.ok()) return Fail("first sync: " + s.ToString(), sys);

  // 1. Push latency.
  Stats push;
  for (int i = 0; i < deliveries; ++i) {
    std::string subject = "push-" + std::to_string(i);
    Clock::time_point t0 = Clock::now();
    s = sys.Deliver("alice", subject);
    if (!s.ok()) return Fail("deliver: " + s.ToString(), sys);
    bool seen = Poll(10000, [&] {
      for (const auto& m : DeviceMessages(sys, "alice")) {
        if (m.value("subject", "") == subject) return true;
      }
      return false;
    });
    if (!seen) return Fail(subject + " never reached the device", sys);
    push.v.push_back(Ms(Clock::now() - t0));
  }
  push.Print("LMTP delivery -> on the device");

  // 2. Read latency: device read -> \Seen over IMAP.
  ImapTestClient imap;
  s = sys.ImapLogin("alice", &imap);
  if (!s.ok()) return Fail("imap login: " + s.ToString(), sys);
  ImapResponse r;
  s = imap.Command("SELECT INBOX", &r);
  if (!s.ok() || !r.ok()) return Fail("select", sys);
  Stats read;
  nlohmann::json listed = DeviceMessages(sys, "alice");
  int done = 0;
  for (const auto& m : listed) {
    if (done >= reads) break;
    if (m.value("state", "") != "unread") continue;
    std::string subject = m.value("subject", "");
    uint64_t id = m.value("id", uint64_t{0});
    mobilesync::testing::ImapMessage im;
    if (!sys.ImapFind("alice", "INBOX", subject, &im)) continue;
    Clock::time_point t0 = Clock::now();
    mobilesync::server::HttpResponse hr;
    s = mobilesync::server::HttpCall("127.0.0.1", sys.api_port(), "POST",
                                     "/v1/messages/" + std::to_string(id) + "/read",
                                     DeviceToken("alice"), "", &hr, 5000);
    if (!s.ok() || hr.status != 200) return Fail("device read failed", sys);
    const std::string fetch = "UID FETCH " + std::to_string(im.uid) + " (FLAGS)";
    bool seen = Poll(10000, [&] {
      ImapResponse fr;
      return imap.Command(fetch, &fr).ok() && fr.Text().find("\\Seen") != std::string::npos;
    });
    if (!seen) return Fail(subject + ": read never reached Dovecot", sys);
    read.v.push_back(Ms(Clock::now() - t0));
    ++done;
  }
  read.Print("device read -> \\Seen in Dovecot");

  // 3. Update sync of 100 changes: mark 100 mapped, unread messages read in
  // one STORE (one poke, one session).
  std::vector<std::string> subjects;
  std::vector<uint32_t> uids;
  for (const auto& m : DeviceMessages(sys, "alice")) {
    if (m.value("state", "") != "unread") continue;
    mobilesync::testing::ImapMessage im;
    if (!sys.ImapFind("alice", "INBOX", m.value("subject", ""), &im)) continue;
    subjects.push_back(m.value("subject", ""));
    uids.push_back(im.uid);
    if (uids.size() == 100) break;
  }
  if (uids.size() < 100) {
    std::printf("update sync: only %zu unread mapped messages, need 100 (raise --deliveries)\n",
                uids.size());
    return 0;
  }
  std::string set;
  for (uint32_t u : uids) set += (set.empty() ? "" : ",") + std::to_string(u);
  const size_t log_offset = sys.AgentLog().size();
  Clock::time_point t0 = Clock::now();
  s = imap.Command("UID STORE " + set + " +FLAGS (\\Seen)", &r);
  if (!s.ok() || !r.ok()) return Fail("store", sys);
  bool all = Poll(30000, [&] {
    size_t n = 0;
    for (const auto& m : DeviceMessages(sys, "alice")) {
      if (m.value("state", "") == "read" &&
          std::find(subjects.begin(), subjects.end(), m.value("subject", "")) != subjects.end()) {
        ++n;
      }
    }
    return n == subjects.size();
  });
  if (!all) return Fail("the 100 changes never all reached the device", sys);
  double wall = Ms(Clock::now() - t0);
  std::string log = sys.AgentLog().substr(log_offset);
  // The agent's "session finished: ok, update sync, N actions sent, M
  // received, T ms" lines of this part.
  std::string sessions;
  const std::string marker = "update sync, ";
  for (size_t p = log.find(marker); p != std::string::npos; p = log.find(marker, p + 1)) {
    size_t eol = log.find('\n', p);
    sessions += " [" + log.substr(p + marker.size(), eol - p - marker.size()) + "]";
  }
  std::printf(
      "update sync of 100 changes: %.1f ms from the IMAP STORE to all 100 read on the "
      "device; agent sessions:%s\n",
      wall, sessions.c_str());
  imap.Logout();
  return 0;
}
