#include "sync_server/device_request.h"

#include <nlohmann/json.hpp>

#include "common/smtp_client.h"

namespace mobilesync::server {
namespace {

using Json = nlohmann::json;

bool Fail(ApiError* e, int status, const char* code, std::string message) {
  e->http_status = status;
  e->code = code;
  e->message = std::move(message);
  return false;
}

// Parses `body` as a JSON object, without exceptions (allow_exceptions
// false: a syntax error yields a "discarded" value).
bool ParseObject(std::string_view body, Json* out, ApiError* e) {
  if (body.empty()) return Fail(e, 400, "malformed_json", "the request needs a JSON object body");
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Fail(e, 400, "malformed_json", "the body is not valid JSON");
  if (!j.is_object()) return Fail(e, 400, "malformed_json", "the body must be a JSON object");
  *out = std::move(j);
  return true;
}

bool GetString(const Json& j, const char* key, bool required, size_t max, std::string* out,
               ApiError* e) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Fail(e, 400, "bad_request", std::string("missing field '") + key + "'");
    return true;
  }
  if (!it->is_string()) return Fail(e, 400, "bad_request", std::string("'") + key + "' must be a string");
  const std::string& v = it->get_ref<const std::string&>();
  if (v.size() > max) return Fail(e, 413, "too_large", std::string("'") + key + "' is too long");
  *out = v;
  return true;
}

bool CheckOnlyKeys(const Json& j, std::initializer_list<const char*> keys, ApiError* e) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* k : keys) known = known || it.key() == k;
    if (!known) {
      return Fail(e, 400, "bad_request",
                  "unknown field '" + it.key().substr(0, 32) + "'");
    }
  }
  return true;
}

bool HasLineBreak(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

bool ParseCompose(std::string_view body, DeviceRequest* out, ApiError* e) {
  Json j;
  if (!ParseObject(body, &j, e)) return false;
  if (!CheckOnlyKeys(j, {"to", "subject", "body", "via_sync"}, e)) return false;
  if (!GetString(j, "to", true, 254, &out->to, e)) return false;
  if (!GetString(j, "subject", false, kMaxSubjectBytes, &out->subject, e)) return false;
  if (!GetString(j, "body", false, kMaxDeviceRequestBody, &out->body, e)) return false;
  auto it = j.find("via_sync");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return Fail(e, 400, "bad_request", "'via_sync' must be true or false");
    out->via_sync = it->get<bool>();
  }
  if (!IsPlainAddress(out->to)) return Fail(e, 400, "bad_request", "'to' is not a plain e-mail address");
  // A line break in a header value would let the device inject headers.
  if (HasLineBreak(out->subject)) return Fail(e, 400, "bad_request", "'subject' contains a line break");
  out->op = DeviceRequest::Op::kCompose;
  return true;
}

bool ParseInject(std::string_view body, DeviceRequest* out, ApiError* e) {
  Json j;
  if (!ParseObject(body, &j, e)) return false;
  if (!CheckOnlyKeys(j, {"message", "date"}, e)) return false;
  if (!GetString(j, "message", true, kMaxDeviceRequestBody, &out->message, e)) return false;
  if (out->message.empty()) return Fail(e, 400, "bad_request", "'message' is empty");
  auto it = j.find("date");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Fail(e, 400, "bad_request", "'date' must be an integer");
    int64_t d = it->get<int64_t>();
    if (d < 0 || d > (int64_t{1} << 40)) return Fail(e, 400, "bad_request", "'date' out of range");
    out->date = d;
  }
  out->op = DeviceRequest::Op::kInject;
  return true;
}

}  // namespace

bool ParseMessageId(std::string_view text, uint64_t* id) {
  if (text.empty() || text.size() > 18) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0) return false;
  *id = v;
  return true;
}

bool ParseDeviceRequest(std::string_view method, std::string_view path, std::string_view body,
                        DeviceRequest* out, ApiError* e) {
  *out = DeviceRequest();
  if (path.size() > kMaxDeviceUriBytes) return Fail(e, 414, "uri_too_long", "request URI too long");
  if (body.size() > kMaxDeviceRequestBody) return Fail(e, 413, "too_large", "request body too large");
  const bool get = method == "GET";
  const bool post = method == "POST";
  if (!get && !post) return Fail(e, 405, "method_not_allowed", "only GET and POST are used");
  constexpr std::string_view kPrefix = "/v1/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return Fail(e, 404, "no_such_endpoint", "unknown endpoint");
  std::string_view rest = path.substr(kPrefix.size());
  if (rest == "status") {
    if (!get) return Fail(e, 405, "method_not_allowed", "use GET");
    out->op = DeviceRequest::Op::kStatus;
    return true;
  }
  if (rest == "sync-now") {
    if (!post) return Fail(e, 405, "method_not_allowed", "use POST");
    out->op = DeviceRequest::Op::kSyncNow;
    return true;
  }
  if (rest == "compose") {
    if (!post) return Fail(e, 405, "method_not_allowed", "use POST");
    return ParseCompose(body, out, e);
  }
  if (rest == "messages") {
    if (get) {
      out->op = DeviceRequest::Op::kList;
      return true;
    }
    return ParseInject(body, out, e);
  }
  constexpr std::string_view kMessages = "messages/";
  if (rest.substr(0, kMessages.size()) != kMessages) {
    return Fail(e, 404, "no_such_endpoint", "unknown endpoint");
  }
  rest.remove_prefix(kMessages.size());
  size_t slash = rest.find('/');
  std::string_view id_text = rest.substr(0, slash);
  if (!ParseMessageId(id_text, &out->id)) {
    return Fail(e, 400, "bad_id", "a message id is a positive decimal number");
  }
  if (slash == std::string_view::npos) {
    if (!get) return Fail(e, 405, "method_not_allowed", "use GET");
    out->op = DeviceRequest::Op::kShow;
    return true;
  }
  std::string_view verb = rest.substr(slash + 1);
  static const struct {
    const char* verb;
    MessageState state;
  } kVerbs[] = {{"read", MessageState::kRead},       {"unread", MessageState::kUnread},
                {"trash", MessageState::kTrash},     {"restore", MessageState::kRead},
                {"destroy", MessageState::kDestroyed}};
  for (const auto& v : kVerbs) {
    if (verb == v.verb) {
      if (!post) return Fail(e, 405, "method_not_allowed", "use POST");
      out->op = DeviceRequest::Op::kSetState;
      out->state = v.state;
      // "restore" is marked by the verb: the API layer restores to the
      // state the message had before the trash.
      if (verb == "restore") out->subject = "restore";
      return true;
    }
  }
  return Fail(e, 404, "no_such_endpoint", "unknown message operation");
}

}  // namespace mobilesync::server
