// RAII owners for the libevent objects the agent creates besides the base
// and plain events (common/event_loop.h). The event_base must outlive them.
#ifndef MOBILESYNC_SYNC_AGENT_EVENT_PTRS_H_
#define MOBILESYNC_SYNC_AGENT_EVENT_PTRS_H_

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/listener.h>

#include <memory>

namespace mobilesync::agent {

// With BEV_OPT_CLOSE_ON_FREE the bufferevent owns its fd and its SSL*.
struct BuffereventDeleter {
  void operator()(bufferevent* bev) const { bufferevent_free(bev); }
};
using BuffereventPtr = std::unique_ptr<bufferevent, BuffereventDeleter>;

struct ListenerDeleter {
  void operator()(evconnlistener* l) const { evconnlistener_free(l); }
};
using ListenerPtr = std::unique_ptr<evconnlistener, ListenerDeleter>;

struct DnsBaseDeleter {
  // 1: fail in-flight requests (their callbacks run with an error).
  void operator()(evdns_base* d) const { evdns_base_free(d, 1); }
};
using DnsBasePtr = std::unique_ptr<evdns_base, DnsBaseDeleter>;

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_EVENT_PTRS_H_
