// libFuzzer target: the device API's request parsing (method, path, JSON
// body), the only code that reads what a device sends before the store.
//
// Input layout: byte 0 picks the method (GET/POST/other); then the path up
// to the first '\n'; the rest is the body. Whatever the input, parsing must
// return, never throw, never crash, and either succeed with fields inside
// the documented bounds or fail with a 4xx.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sync_server/device_request.h"

using mobilesync::server::ApiError;
using mobilesync::server::DeviceRequest;
using mobilesync::server::kMaxDeviceRequestBody;
using mobilesync::server::kMaxSubjectBytes;
using mobilesync::server::ParseDeviceRequest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kMethods[] = {"GET", "POST", "PUT"};
  std::string_view method = kMethods[data[0] % 3];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nl = rest.find('\n');
  std::string_view path = rest.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  DeviceRequest r;
  ApiError e;
  if (ParseDeviceRequest(method, path, body, &r, &e)) {
    if (r.subject.size() > kMaxSubjectBytes && r.subject != "restore") abort();
    if (r.body.size() > kMaxDeviceRequestBody || r.message.size() > kMaxDeviceRequestBody) abort();
    if (r.subject.find_first_of("\r\n") != std::string::npos) abort();
    if (r.op == DeviceRequest::Op::kCompose && r.to.find('@') == std::string::npos) abort();
  } else if (e.http_status < 400 || e.http_status > 499 || e.code.empty()) {
    abort();
  }
  return 0;
}
