// RAII owners for libevent objects and the daemons' signal handling.
//
// Every libevent object has exactly one owner. The event_base must outlive
// everything created on it: declare the EventBasePtr first so it is destroyed
// last.
#ifndef MOBILESYNC_COMMON_EVENT_LOOP_H_
#define MOBILESYNC_COMMON_EVENT_LOOP_H_

#include <event2/event.h>

#include <functional>
#include <memory>

#include "common/status.h"

namespace mobilesync {

struct EventBaseDeleter {
  void operator()(event_base* base) const { event_base_free(base); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;

struct EventDeleter {
  void operator()(event* ev) const { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

// SIGTERM and SIGINT call on_stop, SIGHUP calls on_reload; SIGPIPE is
// ignored (write errors are handled where they happen). The callbacks run
// inside the event loop, never in signal context.
class SignalHandlers {
 public:
  SignalHandlers() = default;
  SignalHandlers(const SignalHandlers&) = delete;
  SignalHandlers& operator=(const SignalHandlers&) = delete;

  [[nodiscard]] Status Install(event_base* base, std::function<void()> on_stop,
                               std::function<void()> on_reload);

 private:
  static void OnSignal(evutil_socket_t sig, short what, void* arg);

  std::function<void()> on_stop_;
  std::function<void()> on_reload_;
  EventPtr term_;
  EventPtr int_;
  EventPtr hup_;
};

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_EVENT_LOOP_H_
