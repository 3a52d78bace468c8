// A small blocking HTTP/1.1 client for mobilesync-device: one request per
// connection ("Connection: close"), a deadline on every read and write, a
// bound on the response size. Enough for a command-line tool talking to the
// device API on loopback; not a general HTTP client.
#ifndef MOBILESYNC_SYNC_SERVER_DEVICE_CLIENT_H_
#define MOBILESYNC_SYNC_SERVER_DEVICE_CLIENT_H_

#include <cstdint>
#include <string>

#include "common/status.h"

namespace mobilesync::server {

struct HttpResponse {
  int status = 0;
  std::string body;
};

constexpr size_t kMaxHttpResponse = 128u << 20;

// Sends one request. Unavailable when the server cannot be reached,
// Timeout after `timeout_ms` without progress, Corruption for a reply that
// is not HTTP. An HTTP error status is not a failure: see response->status.
[[nodiscard]] Status HttpCall(const std::string& host, uint16_t port, const std::string& method,
                              const std::string& path, const std::string& bearer_token,
                              const std::string& body, HttpResponse* response,
                              int timeout_ms = 60000);

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_DEVICE_CLIENT_H_
