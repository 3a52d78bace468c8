// The device API's request parsing, free of I/O (and so fuzzable: see
// tests/fuzz/device_request_fuzzer.cc). docs/device-api.md is the API.
//
//   GET  /v1/status                      the user's window size, counts
//   GET  /v1/messages                    the window, newest first
//   POST /v1/messages                    new mail reaches the device
//                                        {"message": "<RFC 5322>", "date": N}
//   GET  /v1/messages/ID                 one message with its body
//   POST /v1/messages/ID/read|unread|trash|restore|destroy
//   POST /v1/compose                     {"to", "subject", "body", "via_sync"}
//   POST /v1/sync-now                    ask the organisation's agent to sync
#ifndef MOBILESYNC_SYNC_SERVER_DEVICE_REQUEST_H_
#define MOBILESYNC_SYNC_SERVER_DEVICE_REQUEST_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "sync_server/store/message_store.h"

namespace mobilesync::server {

// Bounds on what a device may send (checked before parsing).
constexpr size_t kMaxDeviceRequestBody = 1 << 20;  // 1 MiB of JSON
constexpr size_t kMaxDeviceUriBytes = 512;
constexpr size_t kMaxSubjectBytes = 998;

struct DeviceRequest {
  enum class Op { kStatus, kList, kShow, kSetState, kInject, kCompose, kSyncNow };
  Op op = Op::kList;
  uint64_t id = 0;                              // kShow, kSetState
  MessageState state = MessageState::kRead;     // kSetState
  std::string to, subject, body;                // kCompose
  bool via_sync = false;                        // kCompose
  std::string message;                          // kInject
  int64_t date = 0;                             // kInject; 0: now
};

// What went wrong, as an HTTP status and a stable error code for clients.
struct ApiError {
  int http_status = 400;
  std::string code;     // "bad_request", "not_found", "malformed_json"...
  std::string message;  // for people; never contains request data verbatim
};

// Parses method + path (no query) + body. On failure fills *error and
// returns false. Never throws.
bool ParseDeviceRequest(std::string_view method, std::string_view path, std::string_view body,
                        DeviceRequest* out, ApiError* error);

// Parses a decimal message id 1..2^63-1.
bool ParseMessageId(std::string_view text, uint64_t* id);

}  // namespace mobilesync::server

#endif  // MOBILESYNC_SYNC_SERVER_DEVICE_REQUEST_H_
