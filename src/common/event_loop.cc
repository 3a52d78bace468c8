#include "common/event_loop.h"

#include <csignal>

namespace mobilesync {

Status SignalHandlers::Install(event_base* base, std::function<void()> on_stop,
                               std::function<void()> on_reload) {
  on_stop_ = std::move(on_stop);
  on_reload_ = std::move(on_reload);
  signal(SIGPIPE, SIG_IGN);
  term_.reset(evsignal_new(base, SIGTERM, &SignalHandlers::OnSignal, this));
  int_.reset(evsignal_new(base, SIGINT, &SignalHandlers::OnSignal, this));
  hup_.reset(evsignal_new(base, SIGHUP, &SignalHandlers::OnSignal, this));
  if (!term_ || !int_ || !hup_ || evsignal_add(term_.get(), nullptr) != 0 ||
      evsignal_add(int_.get(), nullptr) != 0 ||
      evsignal_add(hup_.get(), nullptr) != 0) {
    return Status::IOError("cannot install signal handlers");
  }
  return Status::OK();
}

void SignalHandlers::OnSignal(evutil_socket_t sig, short /*what*/, void* arg) {
  auto* self = static_cast<SignalHandlers*>(arg);
  if (sig == SIGHUP) {
    if (self->on_reload_) self->on_reload_();
  } else if (self->on_stop_) {
    self->on_stop_();
  }
}

}  // namespace mobilesync
