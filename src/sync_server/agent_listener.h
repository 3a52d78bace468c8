// AgentListener: the agents' TLS endpoint (OpenSSL 3 through libevent's
// bufferevent_openssl) and the server half of the sync protocol
// (docs/protocol.md; frames from src/wire).
//
// Connection: TLS 1.2+ with the server's certificate; the agent may present
// a client certificate (verified against tls_client_ca_file when set) and/or
// a deployment token in HELLO. agents_file decides who it is and which users
// it may sync; a BEGIN_SESSION for any other user is refused with
// ERROR(USER_NOT_PERMITTED) and logged.
//
// Sessions: one sync session per user at a time across all connections
// (ERROR(SESSION_BUSY) for a second one). Per session the server answers
// LIST_REQUEST and FETCH from the store, applies each agent ACTION in its
// own store transaction and acknowledges it (an insert's ACK carries the
// remote id the store assigned; a re-sent insert gets the same id), then
// after SWAP replays its own action list with at most W actions in flight,
// removing each from the store only on its ACK, and ends with SYNC_COMPLETE.
// END_SESSION(OK) of an initial sync commits a new generation.
//
// Lifetime: a connection is owned by the listener and deleted only at the
// end of one of its own callbacks (deferred callbacks make freeing the
// bufferevent there safe), never in the middle of handling a frame.
#ifndef MOBILESYNC_SYNC_SERVER_AGENT_LISTENER_H_
#define MOBILESYNC_SYNC_SERVER_AGENT_LISTENER_H_

#include <event2/listener.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "sync_server/device_api.h"
#include "sync_server/provisioning.h"
#include "sync_server/store/message_store.h"
#include "wire/limits.h"

namespace mobilesync::server {

struct AgentListenerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 0;  // 0: any free port
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: agents authenticate by token only
  uint32_t default_window = 500;
  uint32_t max_actions_in_flight = wire::kDefaultWindow;
  uint32_t ping_interval_s = 60;
  uint32_t max_sessions_per_connection = 64;
};

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
struct EvListenerDeleter {
  void operator()(evconnlistener* l) const { evconnlistener_free(l); }
};
using EvListenerPtr = std::unique_ptr<evconnlistener, EvListenerDeleter>;

class AgentConnection;

class AgentListener : public SyncNotifier {
 public:
  // REQUIRES: every pointer outlives this object.
  AgentListener(event_base* base, MessageStore* store, const AgentDirectory* agents,
                const DeviceDirectory* devices, AgentListenerOptions options);
  ~AgentListener() override;
  AgentListener(const AgentListener&) = delete;
  AgentListener& operator=(const AgentListener&) = delete;

  [[nodiscard]] Status Start();
  // Stops accepting; tells every agent SHUTTING_DOWN and closes.
  void Stop();
  uint16_t port() const { return port_; }

  // SyncNotifier.
  bool NotifyConnectedAgent(const std::string& user, const char* reason) override;
  bool AgentConnected(const std::string& user) const override;

  // --- For AgentConnection -------------------------------------------------
  MessageStore* store() { return store_; }
  const AgentDirectory& agents() const { return *agents_; }
  const AgentListenerOptions& options() const { return options_; }
  uint32_t WindowFor(const std::string& user) const;
  // The per-user session lock. False when another session holds it.
  bool LockUser(const std::string& user, AgentConnection* conn);
  void UnlockUser(const std::string& user, AgentConnection* conn);
  // Deletes `conn`. REQUIRES: called as the last thing of conn's callback.
  void Remove(AgentConnection* conn);

 private:
  static void OnAccept(evconnlistener* l, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void OnAcceptError(evconnlistener* l, void* arg);

  event_base* base_;
  MessageStore* store_;
  const AgentDirectory* agents_;
  const DeviceDirectory* devices_;
  AgentListenerOptions options_;
  SslCtxPtr ctx_;
  EvListenerPtr listener_;
  uint16_t port_ = 0;
  std::map<AgentConnection*, std::unique_ptr<AgentConnection>> connections_;
  std::map<std::string, AgentConnection*> user_locks_;
};

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_AGENT_LISTENER_H_
