// bench/plugin_overhead: LMTP delivery throughput with the mobilesync plugin
// enabled versus the same Dovecot without it, with the `file` and `fs:posix`
// attribute dicts, with an empty action list and with 1,000 unacknowledged
// actions already queued. Not a test: it prints figures for bench/RESULTS.md.
//
//   bench/plugin_overhead [--messages N] [--rounds R] [--only SUBSTRING]
//
// --only keeps the scenarios whose name contains SUBSTRING (plus the "not
// loaded" baseline, always first).
//
// Each scenario starts a fresh throwaway Dovecot (the test harness), delivers
// N messages of mixed sizes one LMTP session each, and reports messages per
// second and Dovecot's CPU time per message; rounds alternate the scenarios
// so that load from other processes on the machine spreads over all of
// them, and the median round counts.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "harness/dovecot_instance.h"
#include "harness/metadata.h"

namespace mobilesync::testing {
namespace {

struct Scenario {
  std::string name;
  bool load_plugin;
  bool enabled;
  std::string dict;
  int queued;  // actions already waiting for the agent
  // Read the action list back at the end. Not with fs:posix: an entry that
  // is also a prefix of other entries (".../action" of ".../action/<id>") is
  // a directory there, and Dovecot's METADATA read of it fails.
  bool verify = true;
};

std::string Body(size_t size, int seed) {
  std::string line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit " +
                     std::to_string(seed) + "\r\n";
  std::string body;
  while (body.size() < size) body += line;
  body.resize(size);
  return body;
}

// Queues `n` realistic action values in one SETMETADATA.
Status Queue(DovecotInstance* d, int n) {
  if (n == 0) return Status::OK();
  ImapTestClient imap;
  Status s = d->Login("alice", &imap);
  if (!s.ok()) return s;
  std::string cmd = "SETMETADATA \"\" (";
  for (int i = 0; i < n; ++i) {
    char key[64];
    snprintf(key, sizeof key, "%016llx-%08x-%08x", 0x6000000000000ULL + i, 1u,
             static_cast<unsigned>(i));
    char value[256];
    snprintf(value, sizeof value,
             "v1 kind=insert box=INBOX uidvalidity=1763800000 uid=%d "
             "guid=0123456789abcdef0123456789abcdef ts=%d",
             i + 1, 0x6000000 + i);
    if (i > 0) cmd += " ";
    cmd += std::string("/private/vendor/vendor.mobilesync/action/") + key + " \"" + value + "\"";
  }
  cmd += ")";
  ImapResponse r;
  s = imap.Command(cmd, &r);
  if (s.ok() && !r.ok()) s = Status::IOError("SETMETADATA", r.tagged);
  return s;
}

size_t CountActions(DovecotInstance* d) {
  ImapTestClient imap;
  if (!d->Login("alice", &imap).ok()) return 0;
  std::map<std::string, std::string> entries;
  if (!GetMetadata(&imap, "", "/private/vendor/vendor.mobilesync/action", &entries).ok()) return 0;
  return entries.size();
}

// CPU seconds (user + system, including reaped children) used so far by
// the processes of Dovecot's process group: on a shared, loaded machine
// this is steadier than wall-clock time.
double GroupCpuSeconds(pid_t pgid) {
  double ticks = 0;
  for (pid_t pid : ProcessesInGroup(pgid)) {
    std::string stat;
    if (!ReadFile("/proc/" + std::to_string(pid) + "/stat", &stat).ok()) continue;
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    // Fields after the command: state(3) ... utime(14) stime(15) cutime(16) cstime(17).
    std::vector<std::string> f;
    size_t pos = close + 2;
    while (pos < stat.size() && f.size() < 16) {
      size_t sp = stat.find(' ', pos);
      f.push_back(stat.substr(pos, sp - pos));
      if (sp == std::string::npos) break;
      pos = sp + 1;
    }
    if (f.size() < 16) continue;
    ticks += atof(f[11].c_str()) + atof(f[12].c_str()) + atof(f[13].c_str()) + atof(f[14].c_str());
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Result {
  double msgs_per_s;
  double cpu_ms_per_msg;
};

// Returns a negative rate on failure.
Result Run(const Scenario& sc, int messages) {
  const Result kFailed = {-1, -1};
  DovecotOptions o;
  o.users = {{"alice", "alice-pw", sc.enabled ? "userdb_mobilesync_enabled=yes" : ""}};
  o.load_mobilesync = sc.load_plugin;
  o.attribute_dict = sc.dict;
  o.mail_debug = false;
  // The agent is absent: the plugin's cost includes its failed pokes.
  o.plugin_settings = "mobilesync_agent_socket = /nonexistent/agent.sock\n";
  DovecotInstance d;
  Status s = d.Start(o);
  if (!s.ok()) {
    fprintf(stderr, "%s: start: %s\n", sc.name.c_str(), s.ToString().c_str());
    return kFailed;
  }
  s = Queue(&d, sc.queued);
  if (!s.ok()) {
    fprintf(stderr, "%s: queue: %s\n", sc.name.c_str(), s.ToString().c_str());
    return kFailed;
  }
  static const size_t kSizes[] = {512, 2048, 8192, 32768, 131072};
  std::vector<std::string> msgs;
  for (int i = 0; i < messages; ++i) {
    msgs.push_back(MakeTestMessage("bench " + std::to_string(i), Body(kSizes[i % 5], i)));
  }
  double cpu_start = GroupCpuSeconds(d.master_pid());
  auto start = Clock::now();
  for (int i = 0; i < messages; ++i) {
    s = d.Deliver("alice", msgs[i]);
    if (!s.ok()) {
      fprintf(stderr, "%s: delivery %d: %s\n", sc.name.c_str(), i, s.ToString().c_str());
      return kFailed;
    }
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = GroupCpuSeconds(d.master_pid()) - cpu_start;
  if (sc.enabled && sc.verify) {
    size_t n = CountActions(&d);
    if (n != static_cast<size_t>(messages + sc.queued)) {
      fprintf(stderr, "%s: expected %d actions, found %zu\n", sc.name.c_str(),
              messages + sc.queued, n);
      return kFailed;
    }
  }
  return {messages / secs, cpu * 1000 / messages};
}

}  // namespace
}  // namespace mobilesync::testing

int main(int argc, char** argv) {
  using namespace mobilesync::testing;
  int messages = 1000, rounds = 3;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--messages") == 0) messages = atoi(argv[i + 1]);
    if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
    if (strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  }
  const std::string file = "file:%h/dovecot-attributes";
  const std::string fs = "fs:posix:prefix=%h/attributes/";
  std::vector<Scenario> scenarios = {
      {"not loaded", false, false, file, 0},
      {"loaded, user disabled", true, false, file, 0},
      {"enabled, file dict", true, true, file, 0},
      {"enabled, file dict, 1000 queued", true, true, file, 1000},
      {"enabled, fs:posix dict (write only)", true, true, fs, 0, false},
      {"enabled, fs:posix dict, 1000 queued (write only)", true, true, fs, 1000, false},
  };
  if (!only.empty()) {
    std::vector<Scenario> kept = {scenarios[0]};
    for (size_t i = 1; i < scenarios.size(); ++i) {
      if (scenarios[i].name.find(only) != std::string::npos) kept.push_back(scenarios[i]);
    }
    scenarios = kept;
  }
  std::vector<std::vector<Result>> results(scenarios.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < scenarios.size(); ++i) {
      Result v = Run(scenarios[i], messages);
      if (v.msgs_per_s < 0) return 1;
      results[i].push_back(v);
      fprintf(stderr, "round %d: %-50s %8.1f msg/s %7.2f CPU ms/msg\n", r + 1,
              scenarios[i].name.c_str(), v.msgs_per_s, v.cpu_ms_per_msg);
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::vector<double> rate(scenarios.size()), cpu(scenarios.size());
  for (size_t i = 0; i < scenarios.size(); ++i) {
    std::vector<double> a, b;
    for (const Result& x : results[i]) {
      a.push_back(x.msgs_per_s);
      b.push_back(x.cpu_ms_per_msg);
    }
    rate[i] = median(a);
    cpu[i] = median(b);
  }
  printf("%d messages (512 B to 128 KiB, mixed), one LMTP session each, median of %d rounds\n",
         messages, rounds);
  printf("| scenario | msg/s | wall overhead | Dovecot CPU ms/msg | CPU overhead |\n");
  printf("|---|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < scenarios.size(); ++i) {
    printf("| %s | %.1f | %+.1f %% | %.2f | %+.1f %% |\n", scenarios[i].name.c_str(), rate[i],
           (rate[0] / rate[i] - 1) * 100, cpu[i], (cpu[i] / cpu[0] - 1) * 100);
  }
  return 0;
}
