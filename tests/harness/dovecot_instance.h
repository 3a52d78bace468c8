// A throwaway Dovecot for integration tests: Debian's binaries, a config
// generated into a temporary directory, loopback listeners on free ports,
// passwd-file users, a master user for the agent, the freshly built plugin.
//
//   DovecotOptions opts;
//   opts.users.push_back({"alice", "pw", "userdb_mobilesync_enabled=yes"});
//   DovecotInstance dovecot;
//   ASSERT_TRUE(dovecot.Start(opts).ok());
//   ImapTestClient imap;  imap.Connect("127.0.0.1", dovecot.imap_port()) ...
//
// Stop() (or the destructor) sends SIGTERM to the master, reaps it, and kills
// whatever is left of its process group.
#ifndef MOBILESYNC_TESTS_HARNESS_DOVECOT_INSTANCE_H_
#define MOBILESYNC_TESTS_HARNESS_DOVECOT_INSTANCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "harness/mail_clients.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "harness/test_certs.h"

namespace mobilesync::testing {

struct TestUser {
  std::string name;
  std::string password;
  // Extra passwd-file fields, space separated, e.g.
  // "userdb_mobilesync_enabled=yes" (the userdb_ prefix is required).
  std::string extra_fields;
};

struct DovecotOptions {
  std::vector<TestUser> users;
  // Load notify + mobilesync (and mobilesync_lda in LMTP).
  bool load_mobilesync = true;
  // Directory holding lib20_mobilesync_plugin.so etc.; default: the build's
  // src/plugin/.libs.
  std::string plugin_dir;
  // Lines placed inside `plugin { }`.
  std::string plugin_settings;
  // Appended to dovecot.conf verbatim.
  std::string extra_config;
  std::string attribute_dict = "file:%h/dovecot-attributes";
  std::string master_user = "mobilesync-agent";
  std::string master_password = "master-secret-pw";
  bool mail_debug = true;
  // Start() waits for the LMTP greeting too (LMTP loads its mail plugins at
  // process start, so a module that fails to load keeps it from greeting).
  bool wait_for_lmtp = true;
};

class DovecotInstance {
 public:
  DovecotInstance() = default;
  ~DovecotInstance();
  DovecotInstance(const DovecotInstance&) = delete;
  DovecotInstance& operator=(const DovecotInstance&) = delete;

  // Writes the configuration, starts `dovecot -F`, waits (polling, with a
  // deadline) until IMAP and LMTP answer.
  [[nodiscard]] Status Start(const DovecotOptions& options);
  // Graceful stop; returns the number of processes that had to be killed
  // after the master exited (0 when Dovecot cleaned up after itself).
  int Stop();
  // SIGKILL to the master and everything in its process group (a crash).
  void Kill();
  // Starts Dovecot again on the same configuration, files and ports (after
  // Kill() or Stop()); waits until it answers, as Start() does.
  [[nodiscard]] Status Restart();
  bool running() { return master_.running(); }

  const std::string& host() const { return host_; }
  uint16_t imap_port() const { return imap_port_; }
  uint16_t imaps_port() const { return imaps_port_; }
  uint16_t lmtp_port() const { return lmtp_port_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& dir() const { return tmp_->path(); }
  std::string lmtp_socket() const { return tmp_->path() + "/run/lmtp"; }
  std::string doveadm_socket() const { return tmp_->path() + "/run/doveadm-server"; }
  std::string home(const std::string& user) const { return tmp_->path() + "/home/" + user; }
  const std::string& ca_cert() const { return ca_->ca_paths().cert; }
  pid_t master_pid() const { return master_.pid(); }
  const DovecotOptions& options() const { return options_; }

  // The whole Dovecot log so far.
  std::string Log() const;
  // Polls the log until it contains `needle`.
  bool WaitForLog(const std::string& needle, milliseconds timeout = milliseconds(10000)) const;

  // Delivers a message to `user` over LMTP.
  [[nodiscard]] Status Deliver(const std::string& user, const std::string& message);
  // Opens an IMAP session logged in as `user`.
  [[nodiscard]] Status Login(const std::string& user, ImapTestClient* client);
  // Opens an IMAP session as user*master (how the agent logs in).
  [[nodiscard]] Status LoginAsMaster(const std::string& user, ImapTestClient* client);
  // Runs doveadm against this instance.
  [[nodiscard]] Status Doveadm(const std::vector<std::string>& args, CommandResult* result);

  // Builds a module dir of symlinks: Debian's modules plus the given files.
  [[nodiscard]] static Status MakeModuleDir(const std::string& dir,
                                            const std::vector<std::string>& our_modules);

 private:
  std::string BuildConfig() const;
  [[nodiscard]] Status StartMaster();
  std::string PasswordFor(const std::string& user) const;

  DovecotOptions options_;
  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<TestCa> ca_;
  Process master_;
  std::string host_ = "127.0.0.1";
  std::string config_path_;
  uint16_t imap_port_ = 0;
  uint16_t imaps_port_ = 0;
  uint16_t lmtp_port_ = 0;
};

// Whether process `pid` has a file whose path contains `needle` mapped
// (e.g. a plugin module), from /proc/PID/maps.
bool ProcessMaps(pid_t pid, const std::string& needle);
// Processes of `pgid` whose command name (/proc/PID/comm) is `comm`.
std::vector<pid_t> ProcessesNamed(pid_t pgid, const std::string& comm);

// A free TCP port on 127.0.0.1 (bound and released; tests bind it at once).
uint16_t FreeLoopbackPort();

// The build tree's plugin dir, where libtool puts the .so files.
std::string BuiltPluginDir();
std::string BuildDir();
std::string SourceDir();

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_DOVECOT_INSTANCE_H_
