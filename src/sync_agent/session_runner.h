// Local mailbox sessions: a pool of IMAP connections to Dovecot (logged in
// as user*master), and the runner that gives each sync session one.
//
// Pool: a connection released after a session stays open for `idle_ms`
// (kept shorter than a sync cycle's burst, so that the sessions of one user
// within a cycle, e.g. a follow-up run after a poke, reuse it) and at most
// `max_idle` stay open at all: 10,000 enabled users must not mean 10,000
// Dovecot processes.
#ifndef MOBILESYNC_SYNC_AGENT_SESSION_RUNNER_H_
#define MOBILESYNC_SYNC_AGENT_SESSION_RUNNER_H_

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "common/event_loop.h"
#include "common/status.h"
#include "sync_agent/imap/imap_client.h"
#include "sync_agent/mail_submitter.h"
#include "sync_agent/remote_connection.h"
#include "sync_agent/sync_driver.h"
#include "sync_agent/wire_protocol.h"

namespace mobilesync::agent {

// Where the plugin keeps its action list (one attribute per action).
constexpr const char* kActionRoot = "/private/vendor/vendor.mobilesync/action";

class ImapPool {
 public:
  using AcquireDone = std::function<void(const Status&, std::unique_ptr<imap::ImapClient>)>;

  // `options` is the template of every connection (host, port, TLS...).
  ImapPool(event_base* base, imap::ImapClientOptions options, std::string master_user,
           std::string master_password, uint64_t idle_ms, size_t max_idle);
  ~ImapPool();
  ImapPool(const ImapPool&) = delete;
  ImapPool& operator=(const ImapPool&) = delete;

  // A logged-in connection for `user`: an idle one, or a new one.
  void Acquire(const std::string& user, AcquireDone done);
  // Returns a connection; it is kept if still usable, else dropped.
  void Release(const std::string& user, std::unique_ptr<imap::ImapClient> client);
  // Logs out every idle connection (shutdown).
  void CloseIdle();

  void set_master_password(std::string pw) { master_password_ = std::move(pw); }
  size_t idle() const { return idle_.size(); }
  size_t connecting() const { return connecting_.size(); }
  uint64_t reused() const { return reused_; }
  uint64_t opened() const { return opened_; }

 private:
  struct IdleConn {
    ImapPool* pool = nullptr;
    std::string user;
    std::unique_ptr<imap::ImapClient> client;
    EventPtr timer;
  };
  static void IdleTimeoutCb(evutil_socket_t, short, void* arg);
  void DropIdle(const std::string& user);

  event_base* base_;
  imap::ImapClientOptions options_;
  std::string master_user_;
  std::string master_password_;
  uint64_t idle_ms_;
  size_t max_idle_;
  std::map<std::string, std::unique_ptr<IdleConn>> idle_;
  std::list<std::string> idle_order_;  // oldest first, for the max_idle cap
  std::map<imap::ImapClient*, std::unique_ptr<imap::ImapClient>> connecting_;
  // Idle connections saying LOGOUT.
  std::map<imap::ImapClient*, std::unique_ptr<imap::ImapClient>> closing_;
  bool destroying_ = false;
  uint64_t reused_ = 0;
  uint64_t opened_ = 0;
};

// Runs one sync session per call: a pooled IMAP connection for the user, a
// SyncDriver on it, the connection back to the pool when it is still good.
class SessionRunner {
 public:
  // REQUIRES: every pointer outlives this object (remote, submitter may be
  // null).
  SessionRunner(event_base* base, ImapPool* pool, WireProtocol* protocol, RemoteConnection* remote,
                MailSubmitter* submitter, SyncDriverOptions options)
      : base_(base),
        pool_(pool),
        protocol_(protocol),
        remote_(remote),
        submitter_(submitter),
        options_(std::move(options)) {}
  // Outstanding sessions end without calling their `done`.
  ~SessionRunner();
  SessionRunner(const SessionRunner&) = delete;
  SessionRunner& operator=(const SessionRunner&) = delete;

  // `done` runs exactly once, from the loop.
  // `urgent`: someone waits for this session (trigger, operator): reconnect
  // to the server at once if needed.
  // `quick_token`: the user's token from its last session (SyncDriverOptions).
  void Run(const std::string& user, bool urgent, const std::string& quick_token,
           std::function<void(SessionResult)> done);
  size_t active() const { return active_; }

 private:
  struct Running {
    std::unique_ptr<imap::ImapClient> client;
    std::unique_ptr<SyncDriver> driver;
  };

  event_base* base_;
  ImapPool* pool_;
  WireProtocol* protocol_;
  RemoteConnection* remote_;
  MailSubmitter* submitter_;
  SyncDriverOptions options_;
  size_t active_ = 0;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Running> running_;
  bool destroying_ = false;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_SESSION_RUNNER_H_
