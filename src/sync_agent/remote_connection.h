// The agent's one persistent outbound TLS connection to the remote server.
//
// The firewall lets only outbound connections through, so the agent always
// dials out and keeps the connection up: connect (TCP + TLS, bounded by
// connect_timeout), run the protocol, and on any failure close, wait a
// jittered exponential backoff (reconnect_min doubling up to
// reconnect_max, times a random factor in [0.5, 1]: many agents restarting
// together do not reconnect in lock-step) and dial again.
//
// What runs over the connection is a RemoteProtocol (bytes in, bytes out):
// the wire protocol's frame decoder in production, a trivial one in tests.
// The connection owns the transport concerns: TLS policy (tls_context.h),
// time-outs, liveness (keepalive ticks; a peer silent for two intervals is
// declared dead), backpressure (reading pauses while too much is unsent).
//
// Ownership: the bufferevent owns the socket and the SSL*
// (BEV_OPT_CLOSE_ON_FREE); the SSL is never touched after it is handed over
// except through bufferevent_openssl_get_ssl() to read the verify result.
#ifndef MOBILESYNC_SYNC_AGENT_REMOTE_CONNECTION_H_
#define MOBILESYNC_SYNC_AGENT_REMOTE_CONNECTION_H_

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "common/event_loop.h"
#include "common/status.h"
#include "sync_agent/event_ptrs.h"
#include "sync_agent/scheduler.h"
#include "sync_agent/tls_context.h"

namespace mobilesync::agent {

class RemoteConnection;

// The protocol spoken over the connection. Callbacks run on the loop.
class RemoteProtocol {
 public:
  virtual ~RemoteProtocol() = default;
  // TLS is up: send the greeting.
  virtual void OnConnected(RemoteConnection* conn) = 0;
  // Bytes arrived. A non-OK result closes the connection (and reconnects).
  [[nodiscard]] virtual Status OnBytes(std::string_view data) = 0;
  // Every keepalive interval while connected: send a ping.
  virtual void OnKeepalive() = 0;
  // The connection is gone (the protocol drops per-connection state).
  virtual void OnDisconnected(const Status& why) = 0;
};

struct RemoteOptions {
  std::string host;
  uint16_t port = 0;
  std::string server_name;  // certificate name to check; default host
  uint64_t connect_timeout_ms = 10000;
  uint64_t keepalive_interval_ms = 30000;
  uint64_t reconnect_min_ms = 1000;
  uint64_t reconnect_max_ms = 300000;
  // Reading pauses while more than this is queued for sending.
  size_t max_output_bytes = 8 << 20;
};

class RemoteConnection {
 public:
  enum class State { kStopped, kConnecting, kConnected, kBackoff };

  RemoteConnection(event_base* base, const TlsClientContext* tls, RemoteOptions options,
                   RemoteProtocol* protocol);
  ~RemoteConnection();
  RemoteConnection(const RemoteConnection&) = delete;
  RemoteConnection& operator=(const RemoteConnection&) = delete;

  void Start();
  // Closes without reconnecting.
  void Stop();

  // Queues bytes. Unavailable when not connected.
  [[nodiscard]] Status Send(std::string_view bytes);
  // Protocol error or peer misbehaviour: close, back off, reconnect.
  void Fail(const Status& why);
  // The protocol confirmed a healthy session (e.g. the handshake
  // completed): the backoff starts again from reconnect_min.
  void ResetBackoff() { failures_ = 0; }
  // Waiting out a backoff: connect now (a trigger message says the server
  // wants us; the backoff is for a server that is down).
  void ReconnectNow();

  State state() const { return state_; }
  static const char* StateName(State s);
  // Wall-clock ms of the last state change.
  int64_t since_ms() const { return since_ms_; }
  const std::string& last_error() const { return last_error_; }
  uint64_t connects() const { return connects_; }
  uint64_t failures() const { return failures_; }
  // The delay chosen for the current backoff.
  uint64_t backoff_ms() const { return backoff_ms_; }
  std::string peer() const { return options_.host + ":" + std::to_string(options_.port); }

 private:
  static void EventCb(bufferevent* bev, short what, void* arg);
  static void ReadCb(bufferevent* bev, void* arg);
  static void WriteCb(bufferevent* bev, void* arg);
  static void TimerCb(evutil_socket_t, short, void* arg);
  static void KeepaliveCb(evutil_socket_t, short, void* arg);

  void Connect();
  void Close();
  void SetState(State s);
  void ScheduleReconnect();

  event_base* base_;
  const TlsClientContext* tls_;
  RemoteOptions options_;
  RemoteProtocol* protocol_;
  DnsBasePtr dns_;
  BuffereventPtr bev_;
  EventPtr timer_;  // connect time-out, then the backoff
  EventPtr keepalive_;
  State state_ = State::kStopped;
  int64_t since_ms_ = 0;
  TimeMs last_rx_ = 0;
  std::string last_error_;
  uint64_t connects_ = 0;
  uint64_t failures_ = 0;
  uint64_t backoff_ms_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_REMOTE_CONNECTION_H_
