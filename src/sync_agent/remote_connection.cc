#include "sync_agent/remote_connection.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/err.h>

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.h"

namespace mobilesync::agent {
namespace {

timeval ToTimeval(uint64_t ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Seconds(uint64_t ms) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

const char* RemoteConnection::StateName(State s) {
  switch (s) {
    case State::kStopped: return "stopped";
    case State::kConnecting: return "connecting";
    case State::kConnected: return "connected";
    case State::kBackoff: return "waiting to reconnect";
  }
  return "?";
}

RemoteConnection::RemoteConnection(event_base* base, const TlsClientContext* tls,
                                   RemoteOptions options, RemoteProtocol* protocol)
    : base_(base),
      tls_(tls),
      options_(std::move(options)),
      protocol_(protocol),
      timer_(evtimer_new(base, &RemoteConnection::TimerCb, this)),
      keepalive_(event_new(base, -1, EV_PERSIST, &RemoteConnection::KeepaliveCb, this)),
      rng_(std::random_device{}()) {
  if (options_.server_name.empty()) options_.server_name = options_.host;
  since_ms_ = WallMs();
}

RemoteConnection::~RemoteConnection() {
  Close();
  // Pending DNS requests are failed by the deleter; their callbacks go to
  // the bufferevent, which is already gone.
  dns_.reset();
}

void RemoteConnection::SetState(State s) {
  state_ = s;
  since_ms_ = WallMs();
}

void RemoteConnection::Start() {
  if (state_ != State::kStopped) return;
  Connect();
}

void RemoteConnection::Stop() {
  bool was_connected = state_ == State::kConnected;
  Close();
  evtimer_del(timer_.get());
  SetState(State::kStopped);
  if (was_connected) protocol_->OnDisconnected(Status::Aborted("stopping"));
}

void RemoteConnection::Close() {
  event_del(keepalive_.get());
  if (bev_) {
    bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
    bev_.reset();
  }
}

void RemoteConnection::Connect() {
  SetState(State::kConnecting);
  Status s;
  SslPtr ssl;
  if (tls_ == nullptr) s = Status::InvalidArgument("no TLS context");
  if (s.ok()) s = tls_->NewSsl(options_.server_name, &ssl);
  if (s.ok() && !dns_) {
    dns_.reset(evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS));
    // Without a resolver configuration, numeric hosts still work: fall
    // back to libevent's blocking resolver for names.
  }
  bufferevent* bev = nullptr;
  if (s.ok()) {
    // From here the SSL belongs to libevent, even if this call fails.
    bev = bufferevent_openssl_socket_new(base_, -1, ssl.release(), BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == nullptr) s = Status::IOError("cannot create the TLS bufferevent");
  }
  if (s.ok()) {
    bev_.reset(bev);
    // Our frames carry their own lengths: a TCP close without close_notify
    // cannot truncate a frame undetected, so treat it as a plain EOF.
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    // Up to 1 MiB per read callback (libevent's default is 16 KiB): a burst
    // of ACKs or message bodies is handled in one go.
    bufferevent_set_max_single_read(bev, 1u << 20);
    bufferevent_setcb(bev, &RemoteConnection::ReadCb, &RemoteConnection::WriteCb,
                      &RemoteConnection::EventCb, this);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect_hostname(bev, dns_.get(), AF_UNSPEC, options_.host.c_str(),
                                            options_.port) != 0) {
      s = Status::IOError("cannot start connecting");
    }
  }
  if (!s.ok()) {
    Close();
    last_error_ = s.ToString();
    LogError("", "remote: connect to " + peer() + " failed: " + s.message());
    ScheduleReconnect();
    return;
  }
  // One deadline covers DNS, TCP and the TLS handshake: a server that
  // accepts TCP and never speaks TLS must not hang us.
  timeval tv = ToTimeval(options_.connect_timeout_ms);
  evtimer_add(timer_.get(), &tv);
  LogDebug("", "remote: connecting to " + peer());
}

void RemoteConnection::ReconnectNow() {
  if (state_ != State::kBackoff) return;
  evtimer_del(timer_.get());
  LogInfo("", "remote: reconnecting to " + peer() + " now (sync requested)");
  Connect();
}

void RemoteConnection::ScheduleReconnect() {
  ++failures_;
  uint64_t delay = options_.reconnect_min_ms;
  for (uint64_t i = 1; i < failures_ && delay < options_.reconnect_max_ms; ++i) delay *= 2;
  if (delay > options_.reconnect_max_ms) delay = options_.reconnect_max_ms;
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  backoff_ms_ = static_cast<uint64_t>(static_cast<double>(delay) * jitter(rng_));
  SetState(State::kBackoff);
  LogInfo("", "remote: reconnecting to " + peer() + " in " + Seconds(backoff_ms_) + " (attempt " +
                  std::to_string(failures_ + 1) + ")");
  timeval tv = ToTimeval(backoff_ms_);
  evtimer_add(timer_.get(), &tv);
}

void RemoteConnection::Fail(const Status& why) {
  if (state_ == State::kStopped || state_ == State::kBackoff) return;
  bool was_connected = state_ == State::kConnected;
  Close();
  evtimer_del(timer_.get());
  last_error_ = why.ToString();
  LogWarning("", "remote: connection to " + peer() + " lost: " + why.message());
  ScheduleReconnect();
  if (was_connected) protocol_->OnDisconnected(why);
}

void RemoteConnection::TimerCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RemoteConnection*>(arg);
  if (self->state_ == State::kBackoff) {
    self->Connect();
    return;
  }
  if (self->state_ == State::kConnecting) {
    self->Close();
    Status s = Status::Timeout("TCP connect or TLS handshake did not finish within " +
                               Seconds(self->options_.connect_timeout_ms));
    self->last_error_ = s.ToString();
    LogError("", "remote: connect to " + self->peer() + " timed out: " + s.message());
    self->ScheduleReconnect();
  }
}

void RemoteConnection::KeepaliveCb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<RemoteConnection*>(arg);
  if (self->state_ != State::kConnected) return;
  TimeMs silent = MonotonicMs() - self->last_rx_;
  if (silent > static_cast<TimeMs>(2 * self->options_.keepalive_interval_ms)) {
    self->Fail(
        Status::Timeout("no data from the server for " + Seconds(static_cast<uint64_t>(silent))));
    return;
  }
  self->protocol_->OnKeepalive();
}

void RemoteConnection::EventCb(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<RemoteConnection*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    evtimer_del(self->timer_.get());
    self->SetState(State::kConnected);
    ++self->connects_;
    self->last_rx_ = MonotonicMs();
    SSL* ssl = bufferevent_openssl_get_ssl(bev);
    LogInfo("", std::string("remote: connected to ") + self->peer() + " (" +
                    (ssl ? SSL_get_version(ssl) : "TLS") + ")");
    timeval tv = ToTimeval(self->options_.keepalive_interval_ms);
    event_add(self->keepalive_.get(), &tv);
    self->protocol_->OnConnected(self);
    return;
  }
  unsigned long ssl_err = bufferevent_get_openssl_error(bev);
  while (bufferevent_get_openssl_error(bev) != 0) {
  }
  int err = EVUTIL_SOCKET_ERROR();
  if (self->state_ == State::kConnecting) {
    // Say why the dial failed: TLS (verification, protocol version) or the
    // socket's own error (refused, unreachable).
    int so_error = 0;
    socklen_t len = sizeof so_error;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) err = so_error;
    // libevent reports a socket failure under the TLS layer (a refused
    // connect) as a pseudo OpenSSL error of library 0: not a TLS problem.
    if (ssl_err != 0 && ERR_GET_LIB(ssl_err) == 0) ssl_err = 0;
    std::string msg;
    if (ssl_err != 0) {
      msg = "TLS handshake with " + self->peer() +
            " failed: " + DescribeTlsFailure(bufferevent_openssl_get_ssl(bev), ssl_err);
    } else if (err != 0 && err != EAGAIN) {
      msg = "connect to " + self->peer() + " failed: " + strerror(err);
    } else {
      msg = "connect to " + self->peer() +
            " failed: connection refused or closed before the TLS handshake finished";
    }
    self->Close();
    evtimer_del(self->timer_.get());
    self->last_error_ = msg;
    LogError("", "remote: " + msg);
    self->ScheduleReconnect();
    return;
  }
  Status why;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
  // OpenSSL 3 reports a TCP close without close_notify as an error that
  // libevent 2.1 does not map to EOF; our frames carry their own lengths,
  // so it is just the peer going away.
  if (ssl_err != 0 && ERR_GET_REASON(ssl_err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    what |= BEV_EVENT_EOF;
    ssl_err = 0;
  }
#endif
  if (what & BEV_EVENT_EOF) {
    why = Status::Unavailable("server closed the connection");
  } else if (what & BEV_EVENT_TIMEOUT) {
    why = Status::Timeout("I/O time-out");
  } else if (ssl_err != 0) {
    why = Status::IOError("TLS error", DescribeTlsFailure(nullptr, ssl_err));
  } else {
    why = Status::IOError("connection error", err ? strerror(err) : "unknown");
  }
  self->Fail(why);
}

void RemoteConnection::ReadCb(bufferevent* bev, void* arg) {
  auto* self = static_cast<RemoteConnection*>(arg);
  self->last_rx_ = MonotonicMs();
  evbuffer* in = bufferevent_get_input(bev);
  evbuffer_iovec vec[16];
  while (self->state_ == State::kConnected && evbuffer_get_length(in) > 0) {
    int n = evbuffer_peek(in, -1, nullptr, vec, 16);
    size_t used = 0;
    for (int i = 0; i < n && i < 16; ++i) {
      Status s = self->protocol_->OnBytes(
          std::string_view(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len));
      if (!s.ok()) {
        self->Fail(s);
        return;
      }
      if (self->state_ != State::kConnected) return;
      used += vec[i].iov_len;
    }
    evbuffer_drain(in, used);
  }
}

void RemoteConnection::WriteCb(bufferevent* bev, void* arg) {
  auto* self = static_cast<RemoteConnection*>(arg);
  // The output drained: resume reading if Send() paused it.
  if (evbuffer_get_length(bufferevent_get_output(bev)) < self->options_.max_output_bytes / 2)
    bufferevent_enable(bev, EV_READ);
}

Status RemoteConnection::Send(std::string_view bytes) {
  if (state_ != State::kConnected || !bev_) return Status::Unavailable("not connected", peer());
  evbuffer* out = bufferevent_get_output(bev_.get());
  if (evbuffer_add(out, bytes.data(), bytes.size()) != 0)
    return Status::IOError("cannot queue bytes for the server");
  // Backpressure: a server that does not read must not make us buffer
  // everything it asks for.
  if (evbuffer_get_length(out) > options_.max_output_bytes) {
    bufferevent_disable(bev_.get(), EV_READ);
    bufferevent_setwatermark(bev_.get(), EV_WRITE, options_.max_output_bytes / 2, 0);
  }
  return Status::OK();
}

}  // namespace mobilesync::agent
