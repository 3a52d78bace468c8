// A TCP proxy on loopback for network fault injection: the agent dials the
// proxy, the proxy dials the real server, and bytes flow through it (TLS
// passes through untouched; both ends stay real). One thread, poll(2).
//
//   TcpProxy proxy;
//   ASSERT_TRUE(proxy.Start(server_port).ok());   // listens on 127.0.0.1:0
//   ... agent configured with server = 127.0.0.1:proxy.port() ...
//   proxy.Cut();                      // RST every open connection
//   proxy.SetMode(TcpProxy::Mode::kStall);    // bytes stop, sockets stay open
//   proxy.SetMode(TcpProxy::Mode::kTrickle, 300);  // 300 bytes/s each way
//   proxy.SetMode(TcpProxy::Mode::kPass);     // healthy again
//
// In kStall nothing is read or written on existing or new connections (a
// new connection is accepted by the kernel and then hangs too), which is
// what a dead NAT entry or an unplugged cable looks like to both ends.
#ifndef MOBILESYNC_TESTS_HARNESS_TCP_PROXY_H_
#define MOBILESYNC_TESTS_HARNESS_TCP_PROXY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace mobilesync::testing {

class TcpProxy {
 public:
  enum class Mode { kPass, kStall, kTrickle };

  TcpProxy();
  ~TcpProxy();  // stops the thread, closes every socket
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:target.
  [[nodiscard]] Status Start(uint16_t target_port);
  uint16_t port() const { return port_; }

  // kTrickle forwards at most `bytes_per_second` in each direction of each
  // connection.
  void SetMode(Mode mode, uint64_t bytes_per_second = 0);
  // Resets (SO_LINGER 0: the peer sees RST) every open connection, both
  // sides. New connections are accepted as usual afterwards.
  void Cut();

  // Counters (for the test's assertions and the reliability figures).
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t open_connections() const { return open_.load(); }
  uint64_t bytes_forwarded() const { return bytes_.load(); }
  uint64_t cuts() const { return cut_connections_.load(); }

 private:
  struct Pipe;  // one proxied connection
  void Loop();
  void Wake();
  void CloseAll(bool reset);

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  uint16_t target_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_requested_{false};
  std::mutex mu_;  // guards mode_ and rate_
  Mode mode_ = Mode::kPass;
  uint64_t rate_ = 0;
  std::vector<std::unique_ptr<Pipe>> pipes_;  // the loop thread's only
  std::atomic<uint64_t> accepted_{0}, open_{0}, bytes_{0}, cut_connections_{0};
};

// Resource figures of a running process, from /proc/PID.
struct ProcessResources {
  uint64_t rss_kb = 0;   // VmRSS
  uint64_t hwm_kb = 0;   // VmHWM (peak RSS)
  uint64_t fds = 0;      // entries of /proc/PID/fd
  uint64_t threads = 0;  // Threads
};
[[nodiscard]] Status ReadProcessResources(int pid, ProcessResources* out);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_TCP_PROXY_H_
