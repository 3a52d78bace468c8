// The whole mobilesync system on loopback, for end-to-end tests:
//
//   DovecotInstance (plugin on, users alice and bob enabled in userdb,
//     Trash/Sent/Drafts special-use auto-created, pokes to the agent's
//     control socket, the trigger secret)
//   ms-mta smtpd (scripts/ms-mta.py): the organisation's MTA stand-in. The
//     server mails trigger messages to it over SMTP; it delivers
//     @example.test recipients into Dovecot over LMTP as their local part.
//   mobilesync-server (TLS from a TestCa, agents_file for one agent serving
//     alice and bob by deployment token, devices_file with device tokens and
//     each user's window, smtp = the MTA stand-in, trigger secret)
//   mobilesync-agent (server + CA + token, IMAP as master user, control
//     socket, state dir, trigger secret, sendmail_path = a wrapper around
//     ms-mta.py sendmail that records every submission and delivers
//     @example.test recipients over LMTP, short intervals)
//
// Why an SMTP->LMTP relay and not Dovecot's `submission` service: submission
// only relays to another MTA (submission_relay_host) and wants clients to
// authenticate; it never delivers locally. The relay is the smallest real
// thing that accepts SMTP and delivers into Dovecot the way Postfix would.
//
// Every child runs in its own process group and gets SIGKILL when the test
// process dies (harness Process), so an aborted test leaves nothing behind.
// Logs() gives the tails of every log for a failure message (the e2e tests
// print it from TearDown when the test failed).
#ifndef MOBILESYNC_TESTS_HARNESS_SYSTEM_FIXTURE_H_
#define MOBILESYNC_TESTS_HARNESS_SYSTEM_FIXTURE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "harness/dovecot_instance.h"
#include "harness/mail_clients.h"
#include "harness/process.h"
#include "harness/temp_dir.h"
#include "harness/test_certs.h"

namespace mobilesync::testing {

inline const std::string kLocalDomain = "example.test";

struct SystemOptions {
  // The remote window (N) of each user, in devices_file.
  std::map<std::string, uint32_t> windows = {{"alice", 6}, {"bob", 6}};
  // Users in Dovecot's userdb with mobilesync_enabled=yes.
  std::vector<std::string> users = {"alice", "bob"};
  // Agent scheduling (short, so that periodic syncs happen in a test).
  std::string sync_interval = "30s";
  std::string coalesce_delay = "50ms";
  std::string keepalive_interval = "5s";
  // Agent reconnect backoff. A long reconnect_min keeps the agent offline
  // after a server restart (to exercise trigger mail).
  std::string reconnect_min = "100ms";
  std::string reconnect_max = "1s";
  // `mobilesyncctl enable` every user once the agent is up.
  bool enable_users = true;
  bool start_agent = true;
  // Log level of the agent and the server. Below info ("warning", "error":
  // a large site's, for the benches) the fixture cannot see the readiness
  // lines and asks the processes instead (see StartServer, StartAgent).
  std::string log_level = "debug";
  // How long the server and the agent may take to be ready. The server
  // provisions every user of devices_file at start: 10,000 users took ~19 s
  // on a loaded 2-core machine (bench/agent_bench).
  milliseconds start_timeout = milliseconds(20000);
  // Dovecot's mail_debug (very chatty: every attribute lookup).
  bool mail_debug = false;
  // Agent settings the fault tests tune (same meaning as agent.conf).
  std::string connect_timeout = "5s";
  std::string imap_timeout = "20s";
  uint32_t max_sessions = 4;
  // Where the agent dials: given the server's port, returns the port of
  // 127.0.0.1 the agent's `server =` names (a fault-injecting proxy). Unset:
  // the server itself.
  std::function<uint16_t(uint16_t server_port)> agent_route;
  // Extra userdb fields per user, space separated, each "userdb_KEY=VALUE"
  // (e.g. a quota rule), besides userdb_mobilesync_enabled=yes.
  std::map<std::string, std::string> user_fields;
  // Appended to dovecot.conf (e.g. the quota plugin's settings).
  std::string dovecot_extra_config;
  // Extra lines inside Dovecot's `plugin { }`.
  std::string dovecot_plugin_settings;
  // mail_attribute_dict; empty: the harness default (file:%h/dovecot-attributes).
  std::string attribute_dict;
};

// A message as the device sees it (GET /v1/messages).
struct DeviceMessage {
  uint64_t id = 0;
  std::string subject;
  std::string state;  // unread, read, trash
  std::string message_id;
  std::string from;
  int64_t date = 0;
};

// A message as IMAP shows it.
struct ImapMessage {
  uint32_t uid = 0;
  std::string flags;  // the FLAGS list without parentheses
  std::string subject;
  std::string message_id;
  bool seen() const { return flags.find("\\Seen") != std::string::npos; }
};

// One run of mobilesync-device.
struct DeviceResult {
  int exit_code = -1;
  std::string output;
  nlohmann::json json;  // discarded when the output was not JSON
};

// One message the agent handed to sendmail_path.
struct SubmittedMail {
  std::string log_line;  // "sendmail from=... to=... local=... subject=..."
  std::string message;   // the message as sendmail read it
};

class MobilesyncSystem {
 public:
  MobilesyncSystem() = default;
  ~MobilesyncSystem();  // stops everything (SIGTERM, then SIGKILL of each group)
  MobilesyncSystem(const MobilesyncSystem&) = delete;
  MobilesyncSystem& operator=(const MobilesyncSystem&) = delete;

  [[nodiscard]] Status Start(const SystemOptions& options = {});

  // ---- processes: Kill() is SIGKILL (a crash), Restart() starts again on
  // the same files and ports and waits until the process is ready.
  [[nodiscard]] Status StartAgent();
  void KillAgent();
  [[nodiscard]] Status RestartAgent();
  // SIGTERM; returns the exit code.
  int StopAgent();
  bool agent_running() { return agent_.running(); }
  void KillServer();
  [[nodiscard]] Status RestartServer();
  // SIGTERM; returns the exit code. StartServerAgain() after it.
  int StopServer();
  [[nodiscard]] Status StartServerAgain() { return StartServer(); }
  pid_t server_pid() const { return server_.pid(); }
  pid_t agent_pid() const { return agent_.pid(); }
  // The server's SQLite database (WAL mode: also -wal and -shm beside it).
  std::string server_database() const { return tmp_.Sub("server.db"); }
  bool server_running() { return server_.running(); }
  void KillDovecot();
  [[nodiscard]] Status RestartDovecot();
  void KillMta();
  [[nodiscard]] Status RestartMta();

  // ---- the agent
  // mobilesyncctl -c AGENT_CONF ARGS...
  CommandResult Ctl(const std::vector<std::string>& args);
  [[nodiscard]] Status Enable(const std::string& user);
  [[nodiscard]] Status Disable(const std::string& user);
  // `mobilesyncctl sync USER --wait`: OK when the session ended "ok".
  [[nodiscard]] Status SyncWait(const std::string& user);
  // Whether the agent's connection to the server is up (status --json).
  bool AgentConnected();
  // Waits until the agent logged the server's WELCOME (after `offset` bytes
  // of its log).
  [[nodiscard]] Status WaitForHandshake(size_t offset = 0,
                                        milliseconds timeout = milliseconds(20000));

  // ---- the device (mobilesync-device --json as USER's phone)
  DeviceResult Device(const std::string& user, const std::vector<std::string>& args,
                      const std::string& stdin_data = "");
  [[nodiscard]] Status DeviceList(const std::string& user, std::vector<DeviceMessage>* out);
  // The message with this subject in USER's device list, if any.
  bool DeviceFind(const std::string& user, const std::string& subject, DeviceMessage* out);
  // New mail reaching the mobile mailbox from outside (POST /v1/messages as
  // USER's device; mobilesync-device has no command for it). Sets the id.
  [[nodiscard]] Status DeviceInject(const std::string& user, const std::string& subject,
                                    int64_t date, uint64_t* id);

  // ---- Dovecot
  [[nodiscard]] Status Deliver(const std::string& user, const std::string& subject,
                               const std::string& body = "body\r\n",
                               const std::string& extra_headers = "");
  [[nodiscard]] Status ImapLogin(const std::string& user, ImapTestClient* client);
  [[nodiscard]] Status ImapList(const std::string& user, const std::string& mailbox,
                                std::vector<ImapMessage>* out);
  bool ImapFind(const std::string& user, const std::string& mailbox, const std::string& subject,
                ImapMessage* out);
  // STORE +FLAGS/-FLAGS \Seen, UID MOVE to a mailbox, UID EXPUNGE with
  // \Deleted: as the user over IMAP (so the plugin records it).
  [[nodiscard]] Status ImapSetSeen(const std::string& user, const std::string& mailbox,
                                   uint32_t uid, bool seen);
  [[nodiscard]] Status ImapMove(const std::string& user, const std::string& from, uint32_t uid,
                                const std::string& to);
  [[nodiscard]] Status ImapExpunge(const std::string& user, const std::string& mailbox,
                                   uint32_t uid);
  // Number of pending entries in the plugin's action list.
  [[nodiscard]] Status PendingActions(const std::string& user, size_t* count);

  // ---- the MTA stand-in
  std::vector<SubmittedMail> Submitted() const;
  // Lines of the MTA's log (every relayed or submitted message).
  std::string MtaLog() const;
  bool sendmail_configured() const { return sendmail_configured_; }

  // ---- logs
  std::string AgentLog() const;
  std::string ServerLog() const;
  std::string DovecotLog() const { return dovecot_.Log(); }
  // The last `bytes` of every log, labelled, for a failure message.
  std::string Logs(size_t bytes = 6000) const;
  // Polls until `condition` holds; the deadline is the only bound.
  static bool Within(milliseconds timeout, const std::function<bool()>& condition) {
    return WaitFor(condition, timeout);
  }

  DovecotInstance& dovecot() { return dovecot_; }
  const std::string& dir() const { return tmp_.path(); }
  std::string agent_config() const { return tmp_.Sub("agent.conf"); }
  std::string server_config() const { return tmp_.Sub("server.conf"); }
  std::string control_socket() const { return tmp_.Sub("agent.sock"); }
  std::string token_file(const std::string& user) const { return tmp_.Sub(user + ".token"); }
  std::string api() const { return "127.0.0.1:" + std::to_string(api_port_); }
  uint16_t api_port() const { return api_port_; }
  uint16_t server_port() const { return server_port_; }
  uint16_t smtp_port() const { return smtp_port_; }
  const SystemOptions& options() const { return options_; }

 private:
  [[nodiscard]] Status WriteFiles();
  [[nodiscard]] Status StartMta();
  [[nodiscard]] Status StartServer();
  [[nodiscard]] Status WriteAgentConfig();
  std::string ReadLog(const std::string& name) const;
  // Whether log_level logs the "started" and handshake lines (info, debug).
  bool LogsReadiness() const {
    return options_.log_level == "info" || options_.log_level == "debug";
  }

  SystemOptions options_;
  TempDir tmp_;
  TestCa ca_;
  PemPaths server_cert_;
  DovecotInstance dovecot_;
  Process mta_;
  Process server_;
  Process agent_;
  uint16_t server_port_ = 0, api_port_ = 0, smtp_port_ = 0;
  bool sendmail_configured_ = false;
  bool started_ = false;
};

// Device tokens and secrets the fixture provisions (plain; files hold hashes).
std::string DeviceToken(const std::string& user);
inline const std::string kSystemAgentToken = "e2e-agent-deployment-token-0123456789";
inline const std::string kSystemTriggerSecret = "e2e-trigger-secret-0123456789abcdef-0123";

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_SYSTEM_FIXTURE_H_
