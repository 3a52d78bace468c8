#include "sync_agent/agent.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sstream>

#include "common/log.h"
#include "common/secret_file.h"
#include "common/user_name.h"
#include "sync_agent/listing_cache.h"
#include "sync_agent/wire_protocol.h"

namespace mobilesync::agent {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-11-22T10:00:00Z", or "never" for 0.
std::string IsoTime(int64_t ms) {
  if (ms <= 0) return "never";
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Pad(const std::string& s, size_t w) {
  return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
}

SchedulerOptions SchedulerOptionsFrom(const AgentConfig& c) {
  SchedulerOptions o;
  o.interval_ms = c.sync_interval_ms;
  o.coalesce_ms = c.coalesce_delay_ms;
  o.max_sessions = c.max_sessions;
  o.retry_min_ms = c.retry_min_ms;
  o.retry_max_ms = c.retry_max_ms;
  return o;
}

}  // namespace

Agent::Agent(event_base* base, AgentConfig config)
    : base_(base), config_(std::move(config)), scheduler_(SchedulerOptionsFrom(config_)) {}

Agent::~Agent() {
  // Order: nothing may call into a part that is already gone.
  control_.reset();
  driver_.reset();
  runner_.reset();
  pool_.reset();
  remote_.reset();
}

Status Agent::Start() {
  Status s;
  struct stat st;
  if (stat(config_.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::InvalidArgument("state_dir is not a directory", config_.state_dir);
  s = UserRegistry::Open(config_.state_dir + "/agent.db", &registry_);
  if (!s.ok()) return s;
  // The listing cache's files (LocalMailbox): ours alone. Without it every
  // session lists every message, which is slower, not wrong.
  const std::string listings = config_.state_dir + "/listings";
  if ((mkdir(listings.c_str(), 0700) != 0 && errno != EEXIST) ||
      chmod(listings.c_str(), 0700) != 0) {
    LogWarning("", "no listing cache: cannot create " + listings + ": " + strerror(errno));
  } else if (size_t n = RemoveStaleListings(listings, static_cast<int64_t>(time(nullptr)))) {
    LogInfo("", "listing cache: removed " + std::to_string(n) + " stale files");
  }

  std::string master_password;
  s = ReadSecretFile(config_.master_password_file, 4096, &master_password);
  if (!s.ok()) return s;

  TlsClientOptions remote_tls;
  remote_tls.ca_file = config_.tls_ca_file;
  remote_tls.cert_file = config_.tls_cert_file;
  remote_tls.key_file = config_.tls_key_file;
  s = TlsClientContext::Create(remote_tls, &remote_tls_);
  if (!s.ok()) return s;
  if (config_.imap_tls) {
    TlsClientOptions t;
    t.ca_file = config_.imap_ca_file.empty() ? config_.tls_ca_file : config_.imap_ca_file;
    s = TlsClientContext::Create(t, &imap_tls_);
    if (!s.ok()) return s;
  }

  imap::ImapClientOptions io;
  io.host = config_.imap_host;
  io.port = config_.imap_port;
  io.use_tls = config_.imap_tls;
  io.tls = imap_tls_.get();
  io.connect_timeout_ms = config_.connect_timeout_ms;
  io.command_timeout_ms = config_.imap_timeout_ms;
  pool_ = std::make_unique<ImapPool>(base_, io, config_.master_user, std::move(master_password),
                                     config_.imap_idle_keep_ms, config_.imap_max_idle);
  driver_ = std::make_unique<SchedulerDriver>(
      base_, &scheduler_,
      [this](const std::string& user, SyncReason reason) { StartSession(user, reason); });

  s = ControlServer::Create(
      base_, config_.control_socket, config_.control_group,
      [this](const ControlRequest& req, ControlServer::Respond respond) {
        HandleControl(req, std::move(respond));
      },
      &control_);
  if (!s.ok()) return s;

  RemoteOptions ro;
  ro.host = config_.server_host;
  ro.port = config_.server_port;
  ro.server_name = config_.server_name;
  ro.connect_timeout_ms = config_.connect_timeout_ms;
  ro.keepalive_interval_ms = config_.keepalive_interval_ms;
  ro.reconnect_min_ms = config_.reconnect_min_ms;
  ro.reconnect_max_ms = config_.reconnect_max_ms;
  WireProtocol::Options wo;
  if (!config_.deployment_token_file.empty()) {
    s = ReadSecretFile(config_.deployment_token_file, 1024, &wo.deployment_token);
    if (!s.ok()) return s;
  }
  // The server's "sync this user now" goes to the scheduler.
  protocol_ = std::make_unique<WireProtocol>(
      std::move(wo), [this](const std::string& user) { RequestFromServer(user); });
  remote_ = std::make_unique<RemoteConnection>(base_, remote_tls_.get(), ro, protocol_.get());
  submitter_ = std::make_unique<MailSubmitter>(base_, SubmitterOptions(config_));
  runner_ = std::make_unique<SessionRunner>(base_, pool_.get(), protocol_.get(), remote_.get(),
                                            submitter_.get(), DriverOptions(config_));
  remote_->Start();

  TimeMs now = MonotonicMs();
  for (const auto& [name, rec] : registry_->users()) scheduler_.AddUser(name, now);
  driver_->Kick();
  LogInfo("", std::to_string(registry_->size()) + " enabled users loaded from " +
                  config_.state_dir + "/agent.db");
  return Status::OK();
}

// --- Sessions -------------------------------------------------------------------

MailSubmitterOptions Agent::SubmitterOptions(const AgentConfig& c) {
  MailSubmitterOptions o;
  if (!c.submission_host.empty()) {
    o.submission_host = c.submission_host + ":" + std::to_string(c.submission_port);
  }
  o.sendmail_path = c.sendmail_path;
  o.timeout_ms = c.imap_timeout_ms;
  return o;
}

SyncDriverOptions Agent::DriverOptions(const AgentConfig& c) {
  SyncDriverOptions o;
  o.connect_wait_ms = c.connect_timeout_ms + 5000;
  struct stat st;
  const std::string listings = c.state_dir + "/listings";
  if (stat(listings.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) o.mailbox.listing_dir = listings;
  return o;
}

void Agent::StartSession(const std::string& user, SyncReason reason) {
  LogInfo(user, std::string("session started (") + SyncReasonName(reason) + ")");
  int64_t started = WallMs();
  const bool urgent = reason == SyncReason::kTrigger || reason == SyncReason::kOperator;
  const UserRecord* rec = registry_->Find(user);
  runner_->Run(user, urgent, rec ? rec->quick_token : std::string(),
               [this, user, started](SessionResult r) { SessionDone(user, started, r); });
}

void Agent::SessionDone(const std::string& user, int64_t started_ms, const SessionResult& r) {
  int64_t now = WallMs();
  std::string result = r.status.ok() ? "ok" : r.status.ToString();
  if (r.status.ok()) {
    ++sessions_ok_;
    LogInfo(user, std::string("session finished: ok, ") +
                      (r.rerun       ? std::string("restarting as an initial sync")
                       : r.no_change ? std::string("nothing to do on either side")
                                     : std::string(r.initial ? "initial" : "update") + " sync, " +
                                           std::to_string(r.sent) + " actions sent, " +
                                           std::to_string(r.received) + " received") +
                      ", " + std::to_string(now - started_ms) + " ms");
  } else {
    ++sessions_failed_;
    LogWarning(user, "session failed: " + r.status.ToString());
  }
  if (registry_->Find(user) != nullptr) {
    // Only a session that ended OK vouches for its token.
    Status s = registry_->RecordSync(user, now, result, r.pending_actions,
                                     r.status.ok() ? r.quick_token : std::string());
    if (!s.ok()) LogError(user, "cannot record the session: " + s.ToString());
  }
  const Scheduler::UserState* st = scheduler_.Find(user);
  uint64_t started_count = st ? st->started : 0;
  if (driver_) driver_->Finished(user, r.status.ok());
  // Run again at once when the session asked for it, and after an initial
  // sync: the server keeps mail composed on the device (DELIVER) and changes
  // made during the initial sync for the next update session. Whoever waits
  // for the user to be in sync waits for that one too.
  const bool follow_up = (r.rerun || (r.status.ok() && r.initial)) && !stopping_ && driver_;
  auto it = waiters_.find(user);
  if (it != waiters_.end()) {
    std::vector<Waiter> keep;
    for (Waiter& w : it->second) {
      if (started_count > w.after_started && !follow_up) {
        const UserRecord* rec = registry_->Find(user);
        std::string body;
        if (w.json) {
          body = rec ? UserJson(*rec) : "{}";
        } else {
          body = "user " + user + ": " + result + ", " + std::to_string(r.pending_actions) +
                 " pending actions";
        }
        w.respond(r.status.ok() ? ControlReply::Ok(body) : ControlReply::Error(r.status));
      } else {
        keep.push_back(std::move(w));
      }
    }
    if (keep.empty()) {
      waiters_.erase(user);
    } else {
      it->second = std::move(keep);
    }
  }
  if (follow_up) driver_->Request(user, SyncReason::kRetry);
  MaybeFinishShutdown();
}

void Agent::RequestFromServer(const std::string& user) {
  if (stopping_) return;
  if (!driver_->Request(user, SyncReason::kServer))
    LogWarning(user, "server asked to sync a user that is not enabled here");
}

// --- Shutdown and reload ----------------------------------------------------------

void Agent::Shutdown(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  shutdown_done_ = std::move(done);
  if (driver_) driver_->Stop();
  if (remote_) remote_->Stop();
  for (auto& [user, ws] : waiters_)
    for (Waiter& w : ws) w.respond(ControlReply::Error(Status::Aborted("the agent is stopping")));
  waiters_.clear();
  size_t active = runner_ ? runner_->active() : 0;
  if (active > 0) {
    LogInfo("", "waiting up to " + std::to_string(config_.shutdown_timeout_ms) + " ms for " +
                    std::to_string(active) + " running sessions");
    shutdown_timer_.reset(evtimer_new(base_, &Agent::ShutdownTimeoutCb, this));
    timeval tv = {static_cast<time_t>(config_.shutdown_timeout_ms / 1000),
                  static_cast<suseconds_t>((config_.shutdown_timeout_ms % 1000) * 1000)};
    evtimer_add(shutdown_timer_.get(), &tv);
  }
  MaybeFinishShutdown();
}

void Agent::ShutdownTimeoutCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Agent*>(arg);
  LogWarning("", std::to_string(self->runner_->active()) +
                     " sessions still running at shutdown_timeout: abandoning them");
  auto done = std::move(self->shutdown_done_);
  self->shutdown_done_ = nullptr;
  if (done) done();
}

void Agent::MaybeFinishShutdown() {
  if (!stopping_ || !shutdown_done_ || (runner_ && runner_->active() > 0)) return;
  if (pool_) pool_->CloseIdle();
  shutdown_timer_.reset();
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  done();
}

void Agent::Reload(const AgentConfig& fresh) {
  std::vector<std::string> restart;
  if (fresh.server_host != config_.server_host || fresh.server_port != config_.server_port ||
      fresh.server_name != config_.server_name || fresh.tls_ca_file != config_.tls_ca_file ||
      fresh.tls_cert_file != config_.tls_cert_file)
    restart.push_back("server/TLS settings");
  if (fresh.imap_host != config_.imap_host || fresh.imap_port != config_.imap_port ||
      fresh.imap_tls != config_.imap_tls || fresh.master_user != config_.master_user)
    restart.push_back("IMAP settings");
  if (fresh.control_socket != config_.control_socket ||
      fresh.control_group != config_.control_group || fresh.state_dir != config_.state_dir)
    restart.push_back("control socket/state_dir");
  scheduler_.set_options(SchedulerOptionsFrom(fresh));
  std::string pw;
  Status s = ReadSecretFile(fresh.master_password_file, 4096, &pw);
  if (s.ok() && pool_) pool_->set_master_password(std::move(pw));
  if (!s.ok()) LogError("", "reload: keeping the old master password: " + s.message());
  AgentConfig keep = config_;
  config_ = fresh;
  // What needs a restart keeps its running value, so status stays true.
  config_.server_host = keep.server_host;
  config_.server_port = keep.server_port;
  config_.control_socket = keep.control_socket;
  config_.state_dir = keep.state_dir;
  for (const std::string& r : restart) LogWarning("", "reload: " + r + " change after a restart");
  if (driver_) driver_->Kick();
}

// --- Control socket ------------------------------------------------------------------

void Agent::HandleControl(const ControlRequest& req, ControlServer::Respond respond) {
  if (stopping_) {
    respond(ControlReply::Error(Status::Unavailable("the agent is stopping")));
    return;
  }
  if (!req.interactive) {
    // A plugin line: poke USER (local change) or sync USER (trigger).
    Poke(req);
    respond(ControlReply::Ok());
    return;
  }
  if (req.verb == "status") {
    respond(Status_(req));
  } else if (req.verb == "users") {
    respond(Users(req));
  } else if (req.verb == "enable") {
    respond(Enable(req));
  } else if (req.verb == "disable") {
    respond(Disable(req));
  } else if (req.verb == "sync") {
    Sync(req, std::move(respond));
  } else if (req.verb == "poke") {
    Poke(req);
    respond(ControlReply::Ok());
  } else {
    respond(ControlReply::Error(Status::InvalidArgument("unknown command", req.verb)));
  }
}

void Agent::Poke(const ControlRequest& req) {
  if (req.args.size() != 1 || !ValidateUserName(req.args[0]).ok()) {
    LogWarning("", "control socket: malformed '" + req.verb + "' line ignored");
    return;
  }
  const std::string& user = req.args[0];
  // The plugin only pokes for users with mobilesync_enabled=yes: a poke for
  // an unknown user enables it.
  if (registry_->Find(user) == nullptr) {
    std::vector<std::string> added;
    Status s = registry_->Enable({user}, "poke", &added);
    if (!s.ok()) {
      LogError(user, "cannot enable the user: " + s.ToString());
      return;
    }
    LogInfo(user, "enabled (first poke from the plugin)");
    driver_->AddUser(user);
  }
  SyncReason reason = req.verb == "sync" ? SyncReason::kTrigger : SyncReason::kLocalChange;
  LogDebug(user, std::string("request: ") + SyncReasonName(reason));
  driver_->Request(user, reason);
}

std::string Agent::ConnectionJson() const {
  std::ostringstream o;
  o << "{\"state\":" << JsonString(RemoteConnection::StateName(remote_->state()))
    << ",\"server\":" << JsonString(remote_->peer())
    << ",\"since\":" << JsonString(IsoTime(remote_->since_ms()))
    << ",\"connects\":" << remote_->connects()
    << ",\"last_error\":" << JsonString(remote_->last_error()) << "}";
  return o.str();
}

std::string Agent::UserJson(const UserRecord& u) const {
  const Scheduler::UserState* st = scheduler_.Find(u.name);
  std::ostringstream o;
  o << "{\"user\":" << JsonString(u.name) << ",\"source\":" << JsonString(u.source)
    << ",\"last_sync\":" << JsonString(IsoTime(u.last_sync_ms))
    << ",\"result\":" << JsonString(u.last_result.empty() ? "none" : u.last_result)
    << ",\"pending_actions\":" << u.pending_actions
    << ",\"running\":" << (st && st->running ? "true" : "false");
  if (st && !st->running) {
    int64_t in = (st->due - MonotonicMs()) / 1000;
    o << ",\"next_sync_in_s\":" << (in < 0 ? 0 : in);
  }
  o << ",\"failures\":" << (st ? st->failures : 0) << "}";
  return o.str();
}

ControlReply Agent::Status_(const ControlRequest& req) {
  if (req.args.size() > 1)
    return ControlReply::Error(Status::InvalidArgument("status takes at most one user"));
  std::vector<const UserRecord*> users;
  if (req.args.size() == 1) {
    const UserRecord* u = registry_->Find(req.args[0]);
    if (u == nullptr)
      return ControlReply::Error(Status::NotFound("user is not enabled", req.args[0]));
    users.push_back(u);
  } else {
    for (const auto& [name, rec] : registry_->users()) users.push_back(&rec);
  }
  if (req.json) {
    std::ostringstream o;
    o << "{\"connection\":" << ConnectionJson() << ",\"enabled_users\":" << registry_->size()
      << ",\"running_sessions\":" << scheduler_.running()
      << ",\"max_sessions\":" << config_.max_sessions << ",\"sessions_ok\":" << sessions_ok_
      << ",\"sessions_failed\":" << sessions_failed_ << ",\"users\":[";
    for (size_t i = 0; i < users.size(); ++i) o << (i ? "," : "") << UserJson(*users[i]);
    o << "]}";
    return ControlReply::Ok(o.str());
  }
  std::ostringstream o;
  o << "connection: " << RemoteConnection::StateName(remote_->state()) << " (" << remote_->peer()
    << ", since " << IsoTime(remote_->since_ms()) << ")\n";
  if (!remote_->last_error().empty()) o << "last error: " << remote_->last_error() << "\n";
  o << "users: " << registry_->size() << " enabled, " << scheduler_.running() << " running (max "
    << config_.max_sessions << ")\n";
  o << Pad("USER", 24) << Pad("LAST SYNC", 22) << Pad("RESULT", 10) << Pad("PENDING", 9)
    << "NEXT\n";
  for (const UserRecord* u : users) {
    const Scheduler::UserState* st = scheduler_.Find(u->name);
    std::string next = "-";
    if (st && st->running) {
      next = "running";
    } else if (st) {
      int64_t in = (st->due - MonotonicMs()) / 1000;
      next = "in " + std::to_string(in < 0 ? 0 : in) + " s";
    }
    std::string result =
        u->last_result.empty() ? "none" : (u->last_result == "ok" ? "ok" : "failed");
    o << Pad(u->name, 24) << Pad(IsoTime(u->last_sync_ms), 22) << Pad(result, 10)
      << Pad(u->pending_actions < 0 ? "-" : std::to_string(u->pending_actions), 9) << next << "\n";
    if (users.size() == 1 && result == "failed") o << "error: " << u->last_result << "\n";
  }
  std::string text = o.str();
  text.pop_back();
  return ControlReply::Ok(text);
}

ControlReply Agent::Users(const ControlRequest& req) {
  if (!req.args.empty())
    return ControlReply::Error(Status::InvalidArgument("users takes no arguments"));
  std::ostringstream o;
  if (req.json) {
    o << "{\"users\":[";
    bool first = true;
    for (const auto& [name, rec] : registry_->users()) {
      o << (first ? "" : ",") << "{\"user\":" << JsonString(name)
        << ",\"source\":" << JsonString(rec.source)
        << ",\"enabled_at\":" << JsonString(IsoTime(rec.enabled_at * 1000)) << "}";
      first = false;
    }
    o << "]}";
    return ControlReply::Ok(o.str());
  }
  o << Pad("USER", 24) << Pad("SOURCE", 8) << "ENABLED AT";
  for (const auto& [name, rec] : registry_->users())
    o << "\n" << Pad(name, 24) << Pad(rec.source, 8) << IsoTime(rec.enabled_at * 1000);
  return ControlReply::Ok(o.str());
}

ControlReply Agent::Enable(const ControlRequest& req) {
  // "enable USER..." or "enable --from SOURCE USER..." (mobilesyncctl
  // sends batches for --all-from-userdb with source "userdb").
  std::vector<std::string> names;
  std::string source = "ctl";
  for (size_t i = 0; i < req.args.size(); ++i) {
    if (req.args[i].rfind("source=", 0) == 0) {
      source = req.args[i].substr(7);
      continue;
    }
    Status s = ValidateUserName(req.args[i]);
    if (!s.ok()) return ControlReply::Error(Status::InvalidArgument("bad user name", req.args[i]));
    names.push_back(req.args[i]);
  }
  if (names.empty()) return ControlReply::Error(Status::InvalidArgument("enable needs a user"));
  std::vector<std::string> added;
  Status s = registry_->Enable(names, source, &added);
  if (!s.ok()) return ControlReply::Error(s);
  for (const std::string& u : added) {
    LogInfo(u, "enabled (" + source + ")");
    driver_->AddUser(u);
    // A newly enabled user gets its first (initial) sync soon.
    driver_->Request(u, SyncReason::kOperator);
  }
  return ControlReply::Ok(std::to_string(added.size()) + " enabled, " +
                          std::to_string(names.size() - added.size()) + " already enabled");
}

ControlReply Agent::Disable(const ControlRequest& req) {
  if (req.args.size() != 1)
    return ControlReply::Error(Status::InvalidArgument("disable needs one user"));
  Status s = registry_->Disable(req.args[0]);
  if (!s.ok()) return ControlReply::Error(s);
  driver_->RemoveUser(req.args[0]);
  LogInfo(req.args[0], "disabled");
  return ControlReply::Ok("disabled " + req.args[0]);
}

void Agent::Sync(const ControlRequest& req, ControlServer::Respond respond) {
  if (req.args.size() != 1) {
    respond(ControlReply::Error(Status::InvalidArgument("sync needs one user")));
    return;
  }
  const std::string& user = req.args[0];
  if (registry_->Find(user) == nullptr) {
    respond(ControlReply::Error(Status::NotFound("user is not enabled", user)));
    return;
  }
  const Scheduler::UserState* st = scheduler_.Find(user);
  uint64_t started = st ? st->started : 0;
  driver_->Request(user, SyncReason::kOperator);
  LogInfo(user, "sync requested by an operator");
  if (!req.wait) {
    respond(ControlReply::Ok("sync of " + user + " requested"));
    return;
  }
  waiters_[user].push_back({started, std::move(respond), req.json});
}

}  // namespace mobilesync::agent
