// Agent bench (issue 5; issue 9, scenario 6): the agent's memory and CPU with
// USERS enabled users (default 10,000), against the real mobilesync-server.
//
// The whole system comes from tests/harness MobilesyncSystem: a throwaway
// Dovecot with the plugin and USERS passwd-file users, all
// mobilesync_enabled=yes in userdb, mailboxes empty (INBOX and the
// auto-created Trash/Sent/Drafts); mobilesync-server provisioned for all of
// them (agents_file, devices_file, the test's CA); mobilesync-agent with the
// settings of a large site: sync_interval 24h (so that the idle window is
// idle), max_sessions 16, keepalive_interval 30s, imap_timeout 60s,
// log_level warning (agent and server), the pool defaults (imap_idle_keep
// 30s, imap_max_idle 64). Measures, printed as "key: value" lines that go
// into bench/RESULTS.md, section "Agent (issue 5)":
//
//  1. `mobilesyncctl enable --all-from-userdb`, then the time until every
//     user's first session (the initial sync and the session that follows
//     it at once) completed and nothing is due;
//  2. the idle agent and the idle server over IDLE_SECONDS: CPU (utime +
//     stime from /proc/PID/stat) and RSS (VmRSS, VmHWM);
//  3. one no-change cycle: `sync USER` for every user over one control
//     connection (quick no-change sessions), until every user's last_sync
//     advanced: wall time, sessions/s, CPU of the agent, the server and
//     Dovecot (every process of Dovecot's process group, plus what the
//     master reaped of its exited children: cutime + cstime);
//  4. mail: one message by LMTP to each of MAIL_USERS users (the plugin
//     pokes the agent), timed until the agent synced each of them since its
//     delivery; a sample is then checked on the server's device API.
//
// Every wait polls with a deadline scaled by USERS, so the bench stops by
// itself; a wait that times out is reported as such.
//
// Usage: agent_bench [USERS] [IDLE_SECONDS] [MAIL_USERS]  (10000 20 1000;
// MAIL_USERS 0 skips step 4). `agent_bench 1000 10` is a quick check.
// AGENT_BENCH_DOVECOT_REUSE=1 in the environment runs Dovecot's imap-login
// and imap services with process reuse (service_count 0), to tell how much
// of Dovecot's cost per session is process creation.
// Build without sanitizers (see bench/RESULTS.md for the commands).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness/system_fixture.h"
#include "harness/tcp_proxy.h"
#include "sync_server/device_client.h"

namespace mobilesync::testing {
namespace {

double Now() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

std::string UserName(int i) {
  char buf[16];
  snprintf(buf, sizeof buf, "u%05d", i);
  return buf;
}

std::string LoadAvg() {
  std::string s;
  (void)ReadFile("/proc/loadavg", &s);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The agent's last_sync format (ISO 8601 UTC, seconds), so that a time of
// ours compares with it as a string.
std::string IsoNow() {
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// CPU of a process in clock ticks, from /proc/PID/stat: its own (utime +
// stime, all threads) and that of its reaped children (cutime + cstime).
struct Ticks {
  long self = 0;
  long reaped = 0;
};
Ticks ReadTicks(pid_t pid) {
  Ticks t;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');  // the command name may hold spaces
  if (p == std::string::npos || p + 2 > s.size()) return t;
  std::istringstream in(s.substr(p + 2));
  std::string field;
  long v[18] = {};
  for (int i = 3; i <= 17 && in >> field; ++i) v[i] = atol(field.c_str());
  t.self = v[14] + v[15];
  t.reaped = v[16] + v[17];
  return t;
}

// Dovecot is many processes, most of them short-lived (imap, with the
// default service_count 1, is one process per connection): the live ones of
// its process group plus what the master collected from the exited ones.
long DovecotTicks(pid_t master) {
  long sum = ReadTicks(master).reaped;
  for (pid_t p : ProcessesInGroup(master)) sum += ReadTicks(p).self;
  return sum;
}

double Seconds(long ticks) {
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void PrintMemory(const char* who, pid_t pid, const char* when) {
  ProcessResources r;
  if (!ReadProcessResources(pid, &r).ok()) return;
  printf("%s_rss_kb_%s: %llu\n%s_hwm_kb_%s: %llu\n%s_fds_%s: %llu\n", who, when,
         static_cast<unsigned long long>(r.rss_kb), who, when,
         static_cast<unsigned long long>(r.hwm_kb), who, when,
         static_cast<unsigned long long>(r.fds));
}

// An interactive control connection (docs/control-protocol.md): requests
// are pipelined, replies read as they come, so thousands of `sync USER`
// lines go over one connection without either side blocking on the other.
class ControlClient {
 public:
  ~ControlClient() {
    if (fd_ >= 0) close(fd_);
  }
  Status Connect(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return Status::FromErrno("socket", errno);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return Status::InvalidArgument("path too long");
    memcpy(addr.sun_path, path.c_str(), path.size());
    // A local stream socket connects at once or fails.
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return Status::FromErrno("connect " + path, errno);
    }
    std::vector<std::string> bodies;
    return Requests({"hello 1"}, &bodies, nullptr);
  }
  // Sends every request, reads one reply each; bodies (dot-stuffing undone)
  // of +OK replies, "" for -ERR ones, which are counted in *errors.
  Status Requests(const std::vector<std::string>& requests, std::vector<std::string>* bodies,
                  size_t* errors, milliseconds timeout = milliseconds(120000)) {
    std::string out;
    for (const auto& r : requests) out += r + "\n";
    bodies->clear();
    if (errors) *errors = 0;
    size_t off = 0;
    std::string body;
    bool in_body = false;
    const auto deadline = Clock::now() + timeout;
    while (bodies->size() < requests.size()) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Status::Timeout("control socket: no reply");
      pollfd p = {fd_, static_cast<short>(POLLIN | (off < out.size() ? POLLOUT : 0)), 0};
      if (poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) {
        return Status::FromErrno("poll", errno);
      }
      if ((p.revents & POLLOUT) != 0) {
        ssize_t n = write(fd_, out.data() + off, out.size() - off);
        if (n < 0 && errno != EAGAIN) return Status::FromErrno("control socket write", errno);
        if (n > 0) off += static_cast<size_t>(n);
      }
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[65536];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n == 0) return Status::IOError("control socket closed by the agent");
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return Status::FromErrno("control socket read", errno);
      }
      in_.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = in_.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (in_body) {
          if (line == ".") {
            bodies->push_back(body);
            body.clear();
            in_body = false;
          } else {
            body += (line[0] == '.' ? line.substr(1) : line) + "\n";
          }
        } else if (line == "+OK") {
          in_body = true;
        } else if (line.rfind("-ERR", 0) == 0) {
          bodies->push_back("");
          if (errors) ++*errors;
        }
      }
      in_.erase(0, start);
    }
    return Status::OK();
  }
  // One `status [USER] --json` request, parsed (discarded on failure).
  nlohmann::json StatusJson(const std::string& user = "") {
    std::vector<std::string> bodies;
    if (!Requests({"status " + (user.empty() ? "" : user + " ") + "--json"}, &bodies, nullptr)
             .ok() ||
        bodies.empty()) {
      return nlohmann::json::value_t::discarded;
    }
    return nlohmann::json::parse(bodies[0], nullptr, false);
  }

 private:
  int fd_ = -1;
  std::string in_;
};

long Counter(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<long>() : -1;
}

// Polls every `period` until `condition` holds or `timeout` passed. The
// period is not a wait for the condition: it keeps the polling (a status
// request costs the agent CPU, which is being measured) a small share.
bool Poll(milliseconds timeout, milliseconds period, const std::function<bool()>& condition) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(period);
  }
}

// What a full status says about the users (or the `only` ones).
struct UsersState {
  size_t users = 0, never = 0, running = 0, failed = 0, due_soon = 0;
  std::map<std::string, std::string> last_sync;
  std::string first_error;
};
UsersState Summarise(const nlohmann::json& st) {
  UsersState u;
  if (!st.is_object() || !st.contains("users") || !st["users"].is_array()) return u;
  for (const auto& x : st["users"]) {
    if (!x.is_object()) continue;
    ++u.users;
    const std::string name = x.value("user", std::string());
    const std::string last = x.value("last_sync", std::string());
    const std::string result = x.value("result", std::string());
    u.last_sync[name] = last;
    if (last == "never") ++u.never;
    if (x.value("running", false)) ++u.running;
    if (result != "ok" && result != "none") {
      ++u.failed;
      if (u.first_error.empty()) u.first_error = name + ": " + result;
    }
    // sync_interval is 24h: a user due within a minute has a follow-up
    // session or a retry coming.
    if (x.contains("next_sync_in_s") && x["next_sync_in_s"].is_number() &&
        x["next_sync_in_s"].get<double>() < 60) {
      ++u.due_soon;
    }
  }
  return u;
}

int Run(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured
  const int users = argc > 1 ? atoi(argv[1]) : 10000;
  const int idle_s = argc > 2 ? atoi(argv[2]) : 20;
  const int mail_users = std::min(users, argc > 3 ? atoi(argv[3]) : 1000);
  if (users <= 0 || idle_s <= 0 || mail_users < 0) {
    fprintf(stderr, "usage: agent_bench [USERS] [IDLE_SECONDS] [MAIL_USERS]\n");
    return 2;
  }
  printf("users: %d\nmailbox: empty (INBOX, Trash, Sent, Drafts)\n", users);
  printf("loadavg_start: %s\n", LoadAvg().c_str());

  SystemOptions o;
  o.users.clear();
  o.windows.clear();  // the server's default_window (10) for every user
  for (int i = 0; i < users; ++i) o.users.push_back(UserName(i));
  o.enable_users = false;  // enable --all-from-userdb below, as a site would
  o.sync_interval = "24h";
  o.keepalive_interval = "30s";
  o.coalesce_delay = "10ms";
  o.imap_timeout = "60s";
  o.max_sessions = 16;
  o.log_level = "warning";
  // The server provisions every user at start: allow ~10 ms each.
  o.start_timeout = milliseconds(20000 + 10 * static_cast<int64_t>(users));
  const char* reuse = getenv("AGENT_BENCH_DOVECOT_REUSE");
  if (reuse != nullptr && strcmp(reuse, "1") == 0) {
    // One imap process per connection at a time (client_limit 1), but
    // reused for the next one; enough of them for max_sessions plus the
    // agent's imap_max_idle pooled connections.
    o.dovecot_extra_config =
        "service imap-login {\n  service_count = 0\n}\n"
        "service imap {\n  service_count = 0\n  process_limit = 128\n}\n";
  }
  printf("dovecot_process_reuse: %s\n", o.dovecot_extra_config.empty() ? "no" : "yes");
  MobilesyncSystem sys;
  double t0 = Now();
  Status s = sys.Start(o);
  if (!s.ok()) {
    fprintf(stderr, "start: %s\n%s\n", s.ToString().c_str(), sys.Logs(3000).c_str());
    return 1;
  }
  printf("setup_s: %.1f\n", Now() - t0);
  const pid_t agent = sys.agent_pid(), server = sys.server_pid();
  const pid_t dovecot = sys.dovecot().master_pid();
  PrintMemory("agent", agent, "before_enable");
  PrintMemory("server", server, "before_enable");

  ControlClient ctl;
  s = ctl.Connect(sys.control_socket());
  if (!s.ok()) {
    fprintf(stderr, "control socket: %s\n", s.ToString().c_str());
    return 1;
  }
  const milliseconds per_user_deadline(60000 + 150 * static_cast<int64_t>(users));

  // 1. enable, then every user's first session.
  t0 = Now();
  CommandResult r = sys.Ctl({"enable", "--all-from-userdb"});
  printf("enable_all_from_userdb_s: %.2f\n", Now() - t0);
  printf("enable_output: %s\n", r.output.substr(0, r.output.find('\n')).c_str());
  UsersState state;
  bool done = Poll(per_user_deadline, milliseconds(1000), [&] {
    // The cheap counters first; the full status (every user) only when
    // they say the sessions may be over.
    nlohmann::json one = ctl.StatusJson(UserName(0));
    if (Counter(one, "sessions_ok") + Counter(one, "sessions_failed") < users ||
        Counter(one, "running_sessions") != 0) {
      return false;
    }
    state = Summarise(ctl.StatusJson());
    return state.users == static_cast<size_t>(users) && state.never == 0 && state.running == 0 &&
           state.due_soon == 0;
  });
  double initial_s = Now() - t0;
  nlohmann::json counters = ctl.StatusJson(UserName(0));
  printf("initial_sessions_done: %s\n", done ? "yes" : "NO (timed out)");
  printf("initial_sessions_s: %.1f\n", initial_s);
  printf("initial_sessions_ok: %ld\ninitial_sessions_failed: %ld\n",
         Counter(counters, "sessions_ok"), Counter(counters, "sessions_failed"));
  if (!done) {
    printf("initial_users_never_synced: %zu\ninitial_users_failed: %zu (%s)\n", state.never,
           state.failed, state.first_error.c_str());
  }

  // 2. idle: no session is due for hours; the connection only keeps alive.
  long a0 = ReadTicks(agent).self, v0 = ReadTicks(server).self, d0 = DovecotTicks(dovecot);
  double w0 = Now();
  // The measuring window itself, not a wait for a condition.
  std::this_thread::sleep_for(std::chrono::seconds(idle_s));
  long a1 = ReadTicks(agent).self, v1 = ReadTicks(server).self, d1 = DovecotTicks(dovecot);
  double window = Now() - w0;
  printf("idle_window_s: %.1f\n", window);
  printf("idle_agent_cpu_percent: %.3f\n", 100.0 * Seconds(a1 - a0) / window);
  printf("idle_server_cpu_percent: %.3f\n", 100.0 * Seconds(v1 - v0) / window);
  printf("idle_dovecot_cpu_percent: %.3f\n", 100.0 * Seconds(d1 - d0) / window);
  PrintMemory("agent", agent, "idle");
  PrintMemory("server", server, "idle");

  // 3. one no-change cycle.
  nlohmann::json before_json = ctl.StatusJson();
  const UsersState before = Summarise(before_json);
  const long ok_before = Counter(before_json, "sessions_ok");
  const long failed_before = Counter(before_json, "sessions_failed");
  std::vector<std::string> requests;
  for (int i = 0; i < users; ++i) requests.push_back("sync " + UserName(i));
  a0 = ReadTicks(agent).self;
  v0 = ReadTicks(server).self;
  d0 = DovecotTicks(dovecot);
  t0 = Now();
  std::vector<std::string> replies;
  size_t refused = 0;
  s = ctl.Requests(requests, &replies, &refused, per_user_deadline);
  printf("no_change_requests_s: %.2f\nno_change_requests_refused: %zu%s\n", Now() - t0, refused,
         s.ok() ? "" : (" (" + s.ToString() + ")").c_str());
  size_t advanced = 0;
  done = Poll(per_user_deadline, milliseconds(500), [&] {
    nlohmann::json one = ctl.StatusJson(UserName(0));
    if (Counter(one, "sessions_ok") + Counter(one, "sessions_failed") <
            ok_before + failed_before + users ||
        Counter(one, "running_sessions") != 0) {
      return false;
    }
    state = Summarise(ctl.StatusJson());
    advanced = 0;
    for (const auto& [u, last] : state.last_sync) {
      auto b = before.last_sync.find(u);
      if (b != before.last_sync.end() && last != b->second) ++advanced;
    }
    return advanced == static_cast<size_t>(users) && state.running == 0;
  });
  double cycle = Now() - t0;
  a1 = ReadTicks(agent).self;
  v1 = ReadTicks(server).self;
  d1 = DovecotTicks(dovecot);
  counters = ctl.StatusJson(UserName(0));
  printf("no_change_cycle_done: %s\n", done ? "yes" : "NO (timed out)");
  printf("no_change_cycle_users_advanced: %zu\n", advanced);
  printf("no_change_cycle_s: %.2f\n", cycle);
  printf("no_change_cycle_sessions_per_s: %.1f\n", users / cycle);
  printf("no_change_cycle_sessions_ok: %ld\nno_change_cycle_sessions_failed: %ld\n",
         Counter(counters, "sessions_ok") - ok_before,
         Counter(counters, "sessions_failed") - failed_before);
  printf("no_change_cycle_agent_cpu_s: %.2f\n", Seconds(a1 - a0));
  printf("no_change_cycle_server_cpu_s: %.2f\n", Seconds(v1 - v0));
  printf("no_change_cycle_dovecot_cpu_s: %.2f\n", Seconds(d1 - d0));
  printf("no_change_cycle_agent_cpu_ms_per_session: %.2f\n", 1000 * Seconds(a1 - a0) / users);
  printf("no_change_cycle_server_cpu_ms_per_session: %.2f\n", 1000 * Seconds(v1 - v0) / users);
  printf("no_change_cycle_dovecot_cpu_ms_per_session: %.2f\n", 1000 * Seconds(d1 - d0) / users);
  PrintMemory("agent", agent, "after_cycle");
  PrintMemory("server", server, "after_cycle");

  // 4. one message each for MAIL_USERS users, spread over the user range.
  if (mail_users > 0) {
    std::vector<std::string> targets;
    for (int i = 0; i < mail_users; ++i) targets.push_back(UserName(i * (users / mail_users)));
    const std::string since = IsoNow();
    nlohmann::json mail_before = ctl.StatusJson(UserName(0));
    a0 = ReadTicks(agent).self;
    v0 = ReadTicks(server).self;
    d0 = DovecotTicks(dovecot);
    t0 = Now();
    size_t delivered = 0;
    for (const auto& u : targets) {
      if (sys.Deliver(u, "bench " + u).ok()) ++delivered;
    }
    const double deliver_s = Now() - t0;
    // Synced since the delivery: last_sync is at or after the second the
    // deliveries began, and nobody runs or is due (a poke that came during
    // a user's session gives it a follow-up session).
    size_t synced = 0;
    done =
        Poll(milliseconds(60000 + 300 * static_cast<int64_t>(mail_users)), milliseconds(500), [&] {
          if (Counter(ctl.StatusJson(UserName(0)), "running_sessions") != 0) return false;
          state = Summarise(ctl.StatusJson());
          synced = 0;
          for (const auto& u : targets) {
            auto it = state.last_sync.find(u);
            if (it != state.last_sync.end() && it->second != "never" && it->second >= since) {
              ++synced;
            }
          }
          return synced == targets.size() && state.running == 0 && state.due_soon == 0;
        });
    const double mail_s = Now() - t0;
    a1 = ReadTicks(agent).self;
    v1 = ReadTicks(server).self;
    d1 = DovecotTicks(dovecot);
    counters = ctl.StatusJson(UserName(0));
    printf("mail_users: %d\nmail_delivered: %zu\nmail_deliver_s: %.1f\n", mail_users, delivered,
           deliver_s);
    printf("mail_cycle_done: %s\nmail_users_synced: %zu\n", done ? "yes" : "NO (timed out)",
           synced);
    printf("mail_cycle_s: %.1f\n", mail_s);
    printf("mail_cycle_sessions_ok: %ld\nmail_cycle_sessions_failed: %ld\n",
           Counter(counters, "sessions_ok") - Counter(mail_before, "sessions_ok"),
           Counter(counters, "sessions_failed") - Counter(mail_before, "sessions_failed"));
    printf("mail_cycle_agent_cpu_s: %.2f\nmail_cycle_server_cpu_s: %.2f\n", Seconds(a1 - a0),
           Seconds(v1 - v0));
    printf("mail_cycle_dovecot_cpu_s: %.2f (includes the LMTP deliveries)\n", Seconds(d1 - d0));
    // On the server: the device API of a sample of the users (every user
    // would cost a linear token lookup each on the server; a sample is
    // enough to tell the agent's status from the truth).
    size_t sample = 0, on_server = 0;
    for (size_t i = 0; i < targets.size(); i += std::max<size_t>(1, targets.size() / 50)) {
      ++sample;
      server::HttpResponse h;
      if (server::HttpCall("127.0.0.1", sys.api_port(), "GET", "/v1/messages",
                           DeviceToken(targets[i]), "", &h, 5000)
              .ok() &&
          h.status == 200 && h.body.find("bench " + targets[i]) != std::string::npos) {
        ++on_server;
      }
    }
    printf("mail_on_server_sample: %zu of %zu\n", on_server, sample);
  }

  PrintMemory("agent", agent, "end");
  PrintMemory("server", server, "end");
  counters = ctl.StatusJson(UserName(0));
  if (counters.is_object() && counters.contains("connection")) {
    printf("remote_connects_total: %ld\n", Counter(counters["connection"], "connects"));
  }
  printf("loadavg_end: %s\n", LoadAvg().c_str());
  // Warnings and errors of the agent and the server (log_level warning:
  // anything logged is worth a look).
  auto count_lines = [](const std::string& log) {
    return static_cast<long>(std::count(log.begin(), log.end(), '\n'));
  };
  const std::string agent_log = sys.AgentLog(), server_log = sys.ServerLog();
  printf("agent_log_lines: %ld\nserver_log_lines: %ld\n", count_lines(agent_log),
         count_lines(server_log));
  auto head = [](const std::string& log) {
    return log.substr(0, std::min<size_t>(log.size(), 1500));
  };
  if (!agent_log.empty()) printf("agent_log_head:\n%s\n", head(agent_log).c_str());
  if (!server_log.empty()) printf("server_log_head:\n%s\n", head(server_log).c_str());
  const int agent_exit = sys.StopAgent();
  printf("agent_exit: %d\n", agent_exit);
  printf("server_exit: %d\n", sys.StopServer());
  return 0;
}

}  // namespace
}  // namespace mobilesync::testing

int main(int argc, char** argv) {
  return mobilesync::testing::Run(argc, argv);
}
