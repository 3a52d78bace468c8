// Child processes for tests: started in their own session (so that the
// whole process group can be killed), output captured to a file, waited for
// with a deadline, never left behind.
#ifndef MOBILESYNC_TESTS_HARNESS_PROCESS_H_
#define MOBILESYNC_TESTS_HARNESS_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace mobilesync::testing {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Polls `condition` every few milliseconds until it holds or `timeout`
// passes. Returns whether it held. This is how tests wait: never sleep().
bool WaitFor(const std::function<bool()>& condition,
             milliseconds timeout = milliseconds(20000));

class Process {
 public:
  Process() = default;
  ~Process();  // Kills the process group (SIGKILL) if still running.
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (a path, or a name looked up in PATH) with stdout and
  // stderr appended to `output_path` (or inherited when empty). `env`
  // entries ("K=V") are added to the environment.
  [[nodiscard]] Status Start(const std::vector<std::string>& argv,
                             const std::string& output_path = "",
                             const std::vector<std::string>& env = {});

  pid_t pid() const { return pid_; }
  bool running();  // Reaps the process if it has exited.

  // Sends `sig` to the process (not the group).
  void Signal(int sig);
  // Waits up to `timeout` for exit. Returns false on time-out.
  bool Wait(milliseconds timeout, int* exit_status = nullptr);
  // SIGTERM, wait up to `timeout`, then SIGKILL the whole group; reaps.
  // Returns the exit status (or -1 if it had to be killed).
  int Stop(milliseconds timeout = milliseconds(10000));
  // Kills every process left in the process group (children that outlived
  // their parent). Returns how many were still there.
  int KillGroup();

  // -1 until the process exited; then its wait status decoded: the exit
  // code, or 128+signal.
  int exit_code() const { return exit_code_; }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

struct CommandResult {
  int exit_code = -1;  // 128+signal if killed
  std::string output;  // stdout and stderr, interleaved
};

// Runs a command to completion (deadline `timeout`), capturing its output.
[[nodiscard]] Status RunCommand(const std::vector<std::string>& argv, CommandResult* result,
                                milliseconds timeout = milliseconds(60000),
                                const std::string& stdin_data = "",
                                const std::vector<std::string>& env = {});

// Process ids whose process group is `pgid` (from /proc).
std::vector<pid_t> ProcessesInGroup(pid_t pgid);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_PROCESS_H_
