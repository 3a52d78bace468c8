#include "sync_agent/session_runner.h"

#include <algorithm>

#include "common/log.h"

namespace mobilesync::agent {

using imap::CommandResult;
using imap::ImapClient;

ImapPool::ImapPool(event_base* base, imap::ImapClientOptions options, std::string master_user,
                   std::string master_password, uint64_t idle_ms, size_t max_idle)
    : base_(base),
      options_(std::move(options)),
      master_user_(std::move(master_user)),
      master_password_(std::move(master_password)),
      idle_ms_(idle_ms),
      max_idle_(max_idle) {}

ImapPool::~ImapPool() {
  // Destroying a client answers its callbacks ("destroyed"); they must see
  // empty maps and a dying pool, never half-destroyed members.
  destroying_ = true;
  idle_order_.clear();
  auto idle = std::move(idle_);
  idle.clear();
  auto connecting = std::move(connecting_);
  connecting.clear();
  auto closing = std::move(closing_);
  closing.clear();
}

void ImapPool::Acquire(const std::string& user, AcquireDone done) {
  auto it = idle_.find(user);
  if (it != idle_.end()) {
    std::unique_ptr<ImapClient> c = std::move(it->second->client);
    idle_order_.remove(user);
    idle_.erase(it);
    if (c && c->connected()) {
      ++reused_;
      c->set_on_close(nullptr);
      done(Status::OK(), std::move(c));
      return;
    }
  }
  imap::ImapClientOptions o = options_;
  o.log_user = user;
  auto client = std::make_unique<ImapClient>(base_, o);
  ImapClient* raw = client.get();
  connecting_[raw] = std::move(client);
  ++opened_;
  auto fail = [this, raw, done](const Status& s) {
    auto node = connecting_.extract(raw);
    if (destroying_) return;
    done(s, nullptr);
    // node (and the client) die here, after the callback: the client's
    // guard sees it gone and returns.
  };
  raw->Connect([this, raw, user, done, fail](const Status& s) {
    if (!s.ok()) {
      fail(s);
      return;
    }
    raw->LoginAsMaster(user, master_user_, master_password_,
                       [this, raw, done, fail](const CommandResult& r) {
                         if (!r.status.ok()) {
                           fail(r.status);
                           return;
                         }
                         auto node = connecting_.extract(raw);
                         if (destroying_ || node.empty()) return;
                         done(Status::OK(), std::move(node.mapped()));
                       });
  });
}

void ImapPool::Release(const std::string& user, std::unique_ptr<ImapClient> client) {
  if (!client || !client->connected() || client->in_flight() || client->pending() ||
      idle_ms_ == 0 || max_idle_ == 0)
    return;  // dropped: the destructor closes the socket
  DropIdle(user);
  while (idle_.size() >= max_idle_ && !idle_order_.empty()) DropIdle(idle_order_.front());
  auto ic = std::make_unique<IdleConn>();
  ic->pool = this;
  ic->user = user;
  ic->client = std::move(client);
  ic->timer.reset(evtimer_new(base_, &ImapPool::IdleTimeoutCb, ic.get()));
  timeval tv = {static_cast<time_t>(idle_ms_ / 1000),
                static_cast<suseconds_t>((idle_ms_ % 1000) * 1000)};
  evtimer_add(ic->timer.get(), &tv);
  // The server may close an idle connection (its own time-out, a restart).
  ImapPool* self = this;
  std::string u = user;
  ic->client->set_on_close([self, u](const Status&) {
    // Runs inside the client: defer the deletion to the timer.
    auto it = self->idle_.find(u);
    if (it == self->idle_.end()) return;
    timeval zero = {0, 0};
    evtimer_add(it->second->timer.get(), &zero);
  });
  idle_order_.push_back(user);
  idle_[user] = std::move(ic);
}

void ImapPool::IdleTimeoutCb(evutil_socket_t, short, void* arg) {
  auto* ic = static_cast<IdleConn*>(arg);
  ic->pool->DropIdle(ic->user);
}

void ImapPool::DropIdle(const std::string& user) {
  auto it = idle_.find(user);
  if (it == idle_.end()) return;
  idle_order_.remove(user);
  std::unique_ptr<IdleConn> ic = std::move(it->second);
  idle_.erase(it);
  if (ic->client && ic->client->connected()) {
    // A polite LOGOUT; the client lives on in the callback until the
    // server answers (or the connection fails), then deletes itself.
    ImapClient* raw = ic->client.get();
    raw->set_on_close(nullptr);
    closing_[raw] = std::move(ic->client);
    raw->Logout([this, raw](const CommandResult&) {
      // Deleting inside the client's own callback is safe (its guard).
      auto node = closing_.extract(raw);
    });
  }
}

void ImapPool::CloseIdle() {
  while (!idle_order_.empty()) DropIdle(idle_order_.front());
}

SessionRunner::~SessionRunner() {
  destroying_ = true;
  // Clients first: their outstanding commands are answered (Unavailable)
  // while the drivers that issued them still exist; then the drivers.
  auto running = std::move(running_);
  for (auto& [id, r] : running) r.client.reset();
  running.clear();
}

void SessionRunner::Run(const std::string& user, bool urgent, const std::string& quick_token,
                        std::function<void(SessionResult)> done) {
  ++active_;
  auto finish = [this, done](SessionResult r) {
    --active_;
    done(std::move(r));
  };
  pool_->Acquire(user, [this, user, urgent, quick_token, finish](
                           const Status& s, std::unique_ptr<ImapClient> client) {
    if (destroying_) return;
    if (!s.ok()) {
      SessionResult r;
      r.status = s;
      finish(std::move(r));
      return;
    }
    const uint64_t id = next_id_++;
    Running& run = running_[id];
    run.client = std::move(client);
    SyncDriverOptions options = options_;
    options.reconnect_now = urgent;
    options.quick_token = quick_token;
    run.driver = std::make_unique<SyncDriver>(
        base_, protocol_, remote_, run.client.get(), submitter_, user, options,
        [this, id, user, finish](SessionResult r) {
          auto node = running_.extract(id);
          if (destroying_ || node.empty()) return;
          Running& done_run = node.mapped();
          // A connection that is still healthy goes back to the pool; one
          // that failed is dropped with `node`. So is the connection of a
          // session that failed while the server was reachable (it failed
          // on our side, e.g. NO [OVERQUOTA]): Dovecot reads the user's
          // settings at login, and a fix there (a raised quota) must not
          // be hidden by a pooled login (tests/fault/store_fault_test.cc).
          const bool local_failure =
              !r.status.ok() && protocol_ != nullptr && protocol_->handshake_done();
          if (!local_failure && done_run.client && done_run.client->connected() &&
              done_run.client->in_flight() == 0 && done_run.client->pending() == 0) {
            pool_->Release(user, std::move(done_run.client));
          }
          finish(std::move(r));
        });
    run.driver->Start();
  });
}

}  // namespace mobilesync::agent
