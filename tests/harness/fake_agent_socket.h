// A stand-in for the agent's UNIX control socket, as the plugin sees it.
// Modes: read and record every line (a healthy agent), accept connections
// but never read (a hung agent), or never accept (a stuck one).
#ifndef MOBILESYNC_TESTS_HARNESS_FAKE_AGENT_SOCKET_H_
#define MOBILESYNC_TESTS_HARNESS_FAKE_AGENT_SOCKET_H_

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace mobilesync::testing {

class FakeAgentSocket {
 public:
  enum class Mode { kRead, kAcceptNeverRead, kNeverAccept };

  FakeAgentSocket() = default;
  ~FakeAgentSocket();
  FakeAgentSocket(const FakeAgentSocket&) = delete;
  FakeAgentSocket& operator=(const FakeAgentSocket&) = delete;

  // Binds `path` (removed first) and serves it from a thread.
  [[nodiscard]] Status Start(const std::string& path, Mode mode);
  void Stop();

  // Complete lines received so far (without "\n").
  std::vector<std::string> Lines();
  int connections() const { return connections_.load(); }

 private:
  void Run();

  std::string path_;
  Mode mode_ = Mode::kRead;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::atomic<int> connections_{0};
};

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_FAKE_AGENT_SOCKET_H_
