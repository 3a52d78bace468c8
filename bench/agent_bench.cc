// Agent bench (issue 5): an agent holding 10,000 enabled users and one
// remote connection, on a throwaway Dovecot with 10,000 users.
//
// Measures (printed as "key: value" lines, copied into bench/RESULTS.md):
//  * enabling all users through `mobilesyncctl enable --all-from-userdb`;
//  * RSS and CPU of the idle agent over a window (sync_interval 24h, so the
//    users are enabled but idle; the remote connection stays up with
//    keepalives against an in-process wire peer);
//  * one no-change cycle: a sync request for every user at once, until every
//    user has a new last_sync (each session: IMAP login as user*master,
//    GETMETADATA of the action list, logout/pool), with max_sessions 16.
//
// Usage: agent_bench [USERS] [IDLE_SECONDS]  (defaults 10000, 20)
// Build without sanitizers (see bench/RESULTS.md for the exact commands).
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include <atomic>
#include <map>
#include <memory>

#include "harness/dovecot_instance.h"
#include "wire/frame_decoder.h"
#include "wire/frame_encoder.h"

namespace mobilesync::testing {
namespace {

std::string Bin(const std::string& rel) { return BuildDir() + "/src/" + rel; }

long RssKb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return atol(line.c_str() + 6);
  return -1;
}

// utime + stime in clock ticks.
long CpuTicks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');
  std::istringstream in(s.substr(p + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = atol(field.c_str());
    if (i == 15) stime = atol(field.c_str());
  }
  return utime + stime;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The remote end: a minimal wire peer on its own thread and event loop. It
// answers HELLO with WELCOME and PING with PONG, which is all an idle agent
// needs to keep its one connection up.
class WirePeer {
 public:
  ~WirePeer() { Stop(); }
  Status Start(const PemPaths& cert) {
    base_ = event_base_new();
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx_, cert.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, cert.key.c_str(), SSL_FILETYPE_PEM) != 1)
      return Status::IOError("peer certificate");
    sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener_ = evconnlistener_new_bind(base_, &WirePeer::AcceptCb, this,
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
                                        reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    if (!listener_) return Status::IOError("listen");
    sockaddr_in bound = {};
    socklen_t len = sizeof bound;
    getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(bound.sin_port);
    // libevent is not set up for threads here: the loop polls a flag to
    // stop instead of being broken from the main thread.
    tick_ = event_new(base_, -1, EV_PERSIST, &WirePeer::TickCb, this);
    timeval tv = {0, 100000};
    event_add(tick_, &tv);
    thread_ = std::thread([this] { event_base_dispatch(base_); });
    return Status::OK();
  }
  void Stop() {
    if (!base_) return;
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (tick_) event_free(tick_);
    for (auto& c : conns_) bufferevent_free(c.first);
    conns_.clear();
    if (listener_) evconnlistener_free(listener_);
    if (ctx_) SSL_CTX_free(ctx_);
    event_base_free(base_);
    base_ = nullptr;
  }
  uint16_t port() const { return port_; }
  std::atomic<int> accepted{0};
  std::atomic<int> pings{0};

 private:
  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
    auto* self = static_cast<WirePeer*>(arg);
    ++self->accepted;
    bufferevent* b = bufferevent_openssl_socket_new(self->base_, fd, SSL_new(self->ctx_),
                                                    BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
    self->conns_[b] = std::make_unique<wire::FrameDecoder>();
    bufferevent_setcb(b, &WirePeer::ReadCb, nullptr, &WirePeer::EventCb, self);
    bufferevent_enable(b, EV_READ | EV_WRITE);
  }
  static void TickCb(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<WirePeer*>(arg);
    if (self->stop_) event_base_loopbreak(self->base_);
  }
  static void Reply(bufferevent* b, const wire::Frame& f) {
    std::string out;
    if (wire::EncodeFrame(f, &out).ok()) bufferevent_write(b, out.data(), out.size());
  }
  static void ReadCb(bufferevent* b, void* arg) {
    auto* self = static_cast<WirePeer*>(arg);
    auto& dec = self->conns_[b];
    evbuffer* in = bufferevent_get_input(b);
    std::string data(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, data.data(), data.size());
    std::string_view v(data);
    while (!v.empty()) {
      wire::Frame f;
      wire::FrameDecoder::Result res;
      if (!dec->Next(&v, &f, &res).ok() || res == wire::FrameDecoder::Result::kNeedMore) break;
      if (f.As<wire::pb::Hello>()) {
        wire::pb::Welcome w;
        w.set_version(wire::kProtocolVersion);
        w.set_server_name("bench-peer");
        w.set_window(32);
        w.set_max_message_bytes(1 << 20);
        Reply(b, wire::MakeFrame(0, std::move(w)));
      } else if (const auto* p = f.As<wire::pb::Ping>()) {
        ++self->pings;
        wire::pb::Pong pong;
        pong.set_nonce(p->nonce());
        Reply(b, wire::MakeFrame(0, std::move(pong)));
      }
    }
  }
  static void EventCb(bufferevent* b, short what, void* arg) {
    auto* self = static_cast<WirePeer*>(arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
      self->conns_.erase(b);
      bufferevent_free(b);
    }
  }
  event_base* base_ = nullptr;
  SSL_CTX* ctx_ = nullptr;
  evconnlistener* listener_ = nullptr;
  std::map<bufferevent*, std::unique_ptr<wire::FrameDecoder>> conns_;
  std::thread thread_;
  event* tick_ = nullptr;
  std::atomic<bool> stop_{false};
  uint16_t port_ = 0;
};

int Run(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured
  int users = argc > 1 ? atoi(argv[1]) : 10000;
  int idle_s = argc > 2 ? atoi(argv[2]) : 20;
  DovecotOptions o;
  for (int i = 0; i < users; ++i)
    o.users.push_back({"u" + std::to_string(i), "pw", "userdb_mobilesync_enabled=yes"});
  o.load_mobilesync = false;
  o.mail_debug = false;
  o.wait_for_lmtp = false;
  // Enough imap processes for max_sessions concurrent logins, reused.
  o.extra_config = "service imap {\n  process_limit = 64\n  service_count = 0\n  client_limit = 32\n}\n";
  DovecotInstance dovecot;
  Status s = dovecot.Start(o);
  if (!s.ok()) {
    fprintf(stderr, "dovecot: %s\n", s.ToString().c_str());
    return 1;
  }
  TempDir dir;
  (void)MakeDirs(dir.Sub("state"));
  (void)WriteFile(dir.Sub("master.pw"), o.master_password + "\n", 0600);
  // The remote end: an in-process wire peer with a certificate of the test CA.
  TestCa ca;
  PemPaths cert;
  s = ca.Create(dir.path(), "bench");
  if (s.ok()) s = ca.Issue(CertSpec(), dir.path(), "server", &cert);
  WirePeer server;
  if (s.ok()) s = server.Start(cert);
  if (!s.ok()) {
    fprintf(stderr, "server: %s\n", s.ToString().c_str());
    return 1;
  }
  uint16_t port = server.port();
  std::string conf = dir.Sub("agent.conf");
  std::string config =
      "server = 127.0.0.1:" + std::to_string(port) + "\nserver_name = localhost\n" +
      "tls_ca_file = " + ca.ca_paths().cert + "\n" +
      "imap = 127.0.0.1:" + std::to_string(dovecot.imap_port()) + "\n" +
      "master_user = " + o.master_user + "\nmaster_password_file = " + dir.Sub("master.pw") +
      "\ncontrol_socket = " + dir.Sub("agent.sock") + "\nstate_dir = " + dir.Sub("state") +
      "\nsync_interval = 24h\nmax_sessions = 16\nkeepalive_interval = 5s\n" +
      "imap_idle_keep = 0\ndoveadm_config = " + dovecot.config_path() + "\nlog_level = warning\n";
  (void)WriteFile(conf, config);
  Process agent;
  s = agent.Start({Bin("sync_agent/mobilesync-agent"), "-c", conf, "-F"}, dir.Sub("agent.log"));
  if (!s.ok() || !WaitFor([&] { return access(dir.Sub("agent.sock").c_str(), F_OK) == 0; })) {
    fprintf(stderr, "agent did not start\n");
    return 1;
  }
  printf("users: %d\n", users);
  printf("rss_kb_empty: %ld\n", RssKb(agent.pid()));

  double t0 = Now();
  CommandResult r;
  s = RunCommand({Bin("sync_agent/mobilesyncctl"), "-c", conf, "enable", "--all-from-userdb"}, &r,
                 milliseconds(600000));
  printf("enable_all_from_userdb_s: %.2f\n", Now() - t0);
  printf("enable_output: %s", r.output.c_str());

  // Idle window: the agent holds the users and the connection.
  // Wait for the initial sessions caused by enable to drain first.
  auto all_synced = [&](double since_wall) {
    CommandResult st;
    if (!RunCommand({Bin("sync_agent/mobilesyncctl"), "-c", conf, "--json", "status"}, &st,
                    milliseconds(60000)).ok())
      return false;
    (void)since_wall;
    return st.output.find("\"last_sync\":\"never\"") == std::string::npos &&
           st.output.find("\"running\":true") == std::string::npos;
  };
  t0 = Now();
  WaitFor([&] { return all_synced(0); }, milliseconds(1800000));
  printf("initial_cycle_after_enable_s: %.2f\n", Now() - t0);

  long ticks0 = CpuTicks(agent.pid());
  double w0 = Now();
  std::this_thread::sleep_for(std::chrono::seconds(idle_s));  // a bench, not a test
  long ticks1 = CpuTicks(agent.pid());
  double w1 = Now();
  long hz = sysconf(_SC_CLK_TCK);
  printf("idle_window_s: %.1f\n", w1 - w0);
  printf("idle_cpu_percent: %.3f\n",
         100.0 * static_cast<double>(ticks1 - ticks0) / static_cast<double>(hz) / (w1 - w0));
  printf("rss_kb_idle: %ld\n", RssKb(agent.pid()));

  // One no-change cycle: ask for every user at once over one connection.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::string sp = dir.Sub("agent.sock");
  memcpy(addr.sun_path, sp.c_str(), sp.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 1;
  std::string lines;
  for (int i = 0; i < users; ++i) lines += "poke u" + std::to_string(i) + "\n";
  // Count sessions by the agent's log would need info level; use the
  // status: wait until every user's last_sync is newer than the start.
  CommandResult before;
  (void)RunCommand({Bin("sync_agent/mobilesyncctl"), "-c", conf, "--json", "status"}, &before);
  t0 = Now();
  size_t off = 0;
  while (off < lines.size()) {
    ssize_t n = write(fd, lines.data() + off, lines.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(fd);
  long cticks0 = CpuTicks(agent.pid());
  // Done when the sessions counter grew by `users` and nothing runs.
  auto ok_count = [&](const std::string& json) {
    size_t p = json.find("\"sessions_ok\":");
    return p == std::string::npos ? -1L : atol(json.c_str() + p + 14);
  };
  long base_ok = ok_count(before.output);
  bool done = WaitFor([&] {
    CommandResult st;
    if (!RunCommand({Bin("sync_agent/mobilesyncctl"), "-c", conf, "--json", "status", "u0"}, &st)
             .ok())
      return false;
    return ok_count(st.output) >= base_ok + users;
  }, milliseconds(1800000));
  double cycle = Now() - t0;
  long cticks1 = CpuTicks(agent.pid());
  printf("no_change_cycle_done: %s\n", done ? "yes" : "NO (timed out)");
  printf("no_change_cycle_s: %.2f\n", cycle);
  printf("no_change_cycle_sessions_per_s: %.0f\n", users / cycle);
  printf("no_change_cycle_agent_cpu_s: %.2f\n",
         static_cast<double>(cticks1 - cticks0) / static_cast<double>(hz));
  printf("rss_kb_after_cycle: %ld\n", RssKb(agent.pid()));
  {
    CommandResult st;
    (void)RunCommand({Bin("sync_agent/mobilesyncctl"), "-c", conf, "--json", "status", "u0"}, &st);
    size_t p = st.output.find("\"connects\":");
    printf("remote_connects_total: %ld\n", p == std::string::npos ? -1L : atol(st.output.c_str() + p + 11));
  }
  agent.Signal(SIGTERM);
  int st = -1;
  agent.Wait(milliseconds(30000), &st);
  printf("agent_exit: %d\n", st);
  printf("peer_accepted_connections: %d\npeer_pings_answered: %d\n", server.accepted.load(),
         server.pings.load());
  server.Stop();
  return 0;
}

}  // namespace
}  // namespace mobilesync::testing

int main(int argc, char** argv) { return mobilesync::testing::Run(argc, argv); }
