// Agent: the daemon's parts wired together on one event loop.
//
//   control socket --poke/sync/ctl--> registry + scheduler --start--> session
//   remote connection --server's sync request--> scheduler
//   session --IMAP as user*master--> Dovecot (pooled connections)
//
// A session is a SyncDriver (sync_driver.h): the engine between the user's
// Dovecot mailbox and a wire session with the server.
#ifndef MOBILESYNC_SYNC_AGENT_AGENT_H_
#define MOBILESYNC_SYNC_AGENT_AGENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "common/status.h"
#include "sync_agent/agent_config.h"
#include "sync_agent/control_server.h"
#include "sync_agent/mail_submitter.h"
#include "sync_agent/remote_connection.h"
#include "sync_agent/scheduler.h"
#include "sync_agent/session_runner.h"
#include "sync_agent/tls_context.h"
#include "sync_agent/user_registry.h"

namespace mobilesync::agent {

class Agent {
 public:
  Agent(event_base* base, AgentConfig config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Opens the registry, reads the secrets, binds the control socket,
  // starts the remote connection and schedules every enabled user.
  [[nodiscard]] Status Start();
  // Stops starting sessions, lets running ones finish for up to
  // shutdown_timeout, then calls `done` (once).
  void Shutdown(std::function<void()> done);
  // Applies what can change at run time (log level, scheduling, secrets);
  // logs the settings that need a restart.
  void Reload(const AgentConfig& fresh);

  // For tests and the bench.
  Scheduler* scheduler() { return &scheduler_; }
  UserRegistry* registry() { return registry_.get(); }
  RemoteConnection* remote() { return remote_.get(); }
  // Asks for a session of `user` (a server request).
  void RequestFromServer(const std::string& user);

 private:
  struct Waiter {
    uint64_t after_started;  // fire at the end of a session started later
    ControlServer::Respond respond;
    bool json;
  };

  void HandleControl(const ControlRequest& req, ControlServer::Respond respond);
  ControlReply Status_(const ControlRequest& req);
  ControlReply Users(const ControlRequest& req);
  ControlReply Enable(const ControlRequest& req);
  ControlReply Disable(const ControlRequest& req);
  void Sync(const ControlRequest& req, ControlServer::Respond respond);
  void Poke(const ControlRequest& req);

  static MailSubmitterOptions SubmitterOptions(const AgentConfig& c);
  static SyncDriverOptions DriverOptions(const AgentConfig& c);
  void StartSession(const std::string& user, SyncReason reason);
  void SessionDone(const std::string& user, int64_t started_ms, const SessionResult& r);
  std::string UserJson(const UserRecord& u) const;
  std::string ConnectionJson() const;
  static void ShutdownTimeoutCb(evutil_socket_t, short, void* arg);
  void MaybeFinishShutdown();

  event_base* base_;
  AgentConfig config_;
  std::unique_ptr<UserRegistry> registry_;
  Scheduler scheduler_;
  std::unique_ptr<SchedulerDriver> driver_;
  std::unique_ptr<TlsClientContext> remote_tls_;
  std::unique_ptr<TlsClientContext> imap_tls_;
  std::unique_ptr<WireProtocol> protocol_;
  std::unique_ptr<MailSubmitter> submitter_;
  std::unique_ptr<RemoteConnection> remote_;
  std::unique_ptr<ImapPool> pool_;
  std::unique_ptr<SessionRunner> runner_;
  std::unique_ptr<ControlServer> control_;
  std::map<std::string, std::vector<Waiter>> waiters_;
  EventPtr shutdown_timer_;
  std::function<void()> shutdown_done_;
  bool stopping_ = false;
  uint64_t sessions_ok_ = 0;
  uint64_t sessions_failed_ = 0;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_AGENT_H_
