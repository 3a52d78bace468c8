#include "sync_server/device_api.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "sync_server/crypto_util.h"
#include "sync_server/trigger.h"

namespace mobilesync::server {
namespace {

using Json = nlohmann::json;

// Invalid UTF-8 in stored mail must not make dump() throw: replace it.
std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

void Reply(evhttp_request* req, int status, const Json& j) {
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Content-Type", "application/json");
  evhttp_add_header(h, "Cache-Control", "no-store");
  if (status == 401) evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"mobilesync\"");
  evbuffer* out = evbuffer_new();
  std::string text = Dump(j);
  evbuffer_add(out, text.data(), text.size());
  const char* reason = status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  evhttp_send_reply(req, status, reason, out);
  evbuffer_free(out);
}

void ReplyError(evhttp_request* req, int status, const std::string& code,
                const std::string& message) {
  Reply(req, status, Json{{"error", {{"code", code}, {"message", message}}}});
}

Json MessageJson(const MessageRecord& m) {
  return Json{{"id", m.id},           {"date", m.date},
              {"size", m.size},       {"state", MessageStateName(m.state)},
              {"subject", m.subject}, {"from", m.from},
              {"message_id", m.message_id}};
}

const char* MethodName(evhttp_cmd_type cmd) {
  switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    default: return "OTHER";
  }
}

}  // namespace

// One request in progress: the device's user and the evhttp request, which
// stays valid until we reply (evhttp keeps a request whose client left
// until then, and frees it in evhttp_send_reply).
struct DeviceApi::Call {
  evhttp_request* req = nullptr;
  const DeviceUser* user = nullptr;
};

DeviceApi::DeviceApi(event_base* base, MessageStore* store, const DeviceDirectory* devices,
                     SmtpSender* smtp, SyncNotifier* notifier, DeviceApiOptions options)
    : base_(base),
      store_(store),
      devices_(devices),
      smtp_(smtp),
      notifier_(notifier),
      options_(std::move(options)),
      alive_(std::make_shared<bool>(true)) {}

DeviceApi::~DeviceApi() { *alive_ = false; }

Status DeviceApi::Start() {
  http_.reset(evhttp_new(base_));
  if (!http_) return Status::IOError("device API: evhttp_new failed");
  // Bounds before anything is parsed: evhttp answers 413/400 by itself.
  evhttp_set_max_body_size(http_.get(), kMaxDeviceRequestBody);
  evhttp_set_max_headers_size(http_.get(), 16 * 1024);
  evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST);
  evhttp_set_timeout(http_.get(), 60);
  evhttp_set_gencb(http_.get(), &DeviceApi::OnRequest, this);
  evhttp_bound_socket* sock =
      evhttp_bind_socket_with_handle(http_.get(), options_.host.c_str(), options_.port);
  if (!sock) {
    return Status::IOError("device API: cannot listen on " + options_.host + ":" +
                           std::to_string(options_.port));
  }
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(evhttp_bound_socket_get_fd(sock), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return Status::OK();
}

void DeviceApi::OnRequest(evhttp_request* req, void* arg) {
  auto* self = static_cast<DeviceApi*>(arg);
  // No exception may cross into libevent (nlohmann, std::bad_alloc).
  try {
    self->Handle(req);
  } catch (const std::exception& e) {
    LogError("", std::string("device API: internal error: ") + e.what());
    ReplyError(req, 500, "internal", "internal error");
  } catch (...) {
    LogError("", "device API: internal error");
    ReplyError(req, 500, "internal", "internal error");
  }
}

void DeviceApi::Handle(evhttp_request* req) {
  Call call;
  call.req = req;
  const char* auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  std::string_view token;
  if (auth != nullptr && strncasecmp(auth, "Bearer ", 7) == 0) token = auth + 7;
  call.user = devices_->Authenticate(token);
  if (call.user == nullptr) {
    // Never log the token, not even a prefix.
    LogWarning("", auth == nullptr ? "device API: request without a bearer token"
                                   : "device API: unknown bearer token");
    return ReplyError(req, 401, "unauthorized", "missing or unknown bearer token");
  }
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* path = uri ? evhttp_uri_get_path(uri) : nullptr;
  evbuffer* in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  if (n > kMaxDeviceRequestBody) return ReplyError(req, 413, "too_large", "request body too large");
  std::string body(n, '\0');
  if (n > 0) evbuffer_copyout(in, &body[0], n);
  DeviceRequest r;
  ApiError e;
  if (!ParseDeviceRequest(MethodName(evhttp_request_get_command(req)), path ? path : "", body,
                          &r, &e)) {
    LogInfo(call.user->user, "device API: refused request: " + e.code);
    return ReplyError(req, e.http_status, e.code, e.message);
  }
  auto* heap = new Call(call);
  Dispatch(heap, r);
}

void DeviceApi::Dispatch(Call* call, const DeviceRequest& r) {
  std::unique_ptr<Call> owned(call);
  const std::string& user = call->user->user;
  evhttp_request* req = call->req;
  Status s;
  switch (r.op) {
    case DeviceRequest::Op::kStatus: {
      UserInfo info;
      s = store_->GetUser(user, &info);
      if (!s.ok()) break;
      return Reply(req, 200,
                   Json{{"user", user},
                        {"window_size", info.window_size},
                        {"window_count", info.window_count},
                        {"generation", info.generation},
                        {"pending_actions", info.pending_actions},
                        {"agent_connected", notifier_->AgentConnected(user)}});
    }
    case DeviceRequest::Op::kList: {
      std::vector<MessageRecord> window;
      UserInfo info;
      s = store_->GetUser(user, &info);
      if (s.ok()) s = store_->ListWindow(user, &window);
      if (!s.ok()) break;
      Json list = Json::array();
      for (const MessageRecord& m : window) list.push_back(MessageJson(m));
      return Reply(req, 200, Json{{"window_size", info.window_size}, {"messages", list}});
    }
    case DeviceRequest::Op::kShow: {
      MessageRecord m;
      s = store_->GetMessage(user, r.id, &m);
      if (!s.ok()) break;
      Json j = MessageJson(m);
      j["body"] = m.body;
      return Reply(req, 200, j);
    }
    case DeviceRequest::Op::kSetState:
      owned.release();
      return DoSetState(call, r);
    case DeviceRequest::Op::kInject: {
      uint64_t id = 0;
      int64_t date = r.date != 0 ? r.date : static_cast<int64_t>(time(nullptr));
      s = store_->DeviceInsert(user, r.message, date, &id);
      if (!s.ok()) break;
      LogInfo(user, "device API: new mail " + std::to_string(id) + " in the window");
      notifier_->NotifyConnectedAgent(user, "remote-change");
      return Reply(req, 201, Json{{"id", id}});
    }
    case DeviceRequest::Op::kCompose:
      owned.release();
      return DoCompose(call, r);
    case DeviceRequest::Op::kSyncNow:
      owned.release();
      return DoSyncNow(call);
  }
  if (s.IsNotFound()) {
    return ReplyError(req, 404, "not_found", "no message " + std::to_string(r.id) + " in the window");
  }
  LogError(user, "device API: store failed: " + s.ToString());
  ReplyError(req, 500, "internal", "the store failed; try again");
}

void DeviceApi::DoSetState(Call* call, const DeviceRequest& r) {
  std::unique_ptr<Call> owned(call);
  const std::string& user = call->user->user;
  const bool restore = r.subject == "restore";
  Status s = restore ? store_->DeviceRestore(user, r.id) : store_->DeviceSetState(user, r.id, r.state);
  if (s.IsNotFound()) {
    return ReplyError(call->req, 404, "not_found",
                      "no message " + std::to_string(r.id) + " in the window");
  }
  if (s.IsInvalidArgument()) {
    return ReplyError(call->req, 409, "not_in_trash",
                      "message " + std::to_string(r.id) + " is not in Trash");
  }
  if (!s.ok()) {
    LogError(user, "device API: store failed: " + s.ToString());
    return ReplyError(call->req, 500, "internal", "the store failed; try again");
  }
  const char* what = restore ? "restore" : MessageStateName(r.state);
  LogInfo(user, std::string("device API: ") + what + " " + std::to_string(r.id));
  notifier_->NotifyConnectedAgent(user, "remote-change");
  Json j{{"id", r.id}};
  if (r.state == MessageState::kDestroyed) {
    j["state"] = "destroyed";
  } else {
    MessageRecord m;
    if (store_->GetMessage(user, r.id, &m).ok()) j["state"] = MessageStateName(m.state);
  }
  Reply(call->req, 200, j);
}

std::string DeviceApi::AddressOf(const DeviceUser& u) const {
  return u.address.empty() ? u.user + "@localhost" : u.address;
}

void DeviceApi::DoCompose(Call* call, const DeviceRequest& r) {
  std::unique_ptr<Call> owned(call);
  const DeviceUser& du = *call->user;
  const int64_t now = time(nullptr);
  std::string nonce;
  Status s = RandomHex(12, &nonce);
  if (!s.ok()) return ReplyError(call->req, 500, "internal", "no randomness");
  OutboxItem item;
  item.to = r.to;
  item.subject = r.subject;
  item.via_sync = r.via_sync;
  item.message = "From: " + AddressOf(du) + "\r\nTo: " + r.to + "\r\nSubject: " + r.subject +
                 "\r\nDate: " + RfcDate(now) + "\r\nMessage-ID: <" + nonce +
                 "@mobilesync-device>\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                 "\r\n" + r.body;
  uint64_t id = 0;
  s = store_->DeviceCompose(du.user, item, &id);
  if (!s.ok()) {
    LogError(du.user, "device API: store failed: " + s.ToString());
    return ReplyError(call->req, 500, "internal", "the store failed; try again");
  }
  if (r.via_sync) {
    LogInfo(du.user, "device API: composed " + std::to_string(id) + " queued for the next sync");
    notifier_->NotifyConnectedAgent(du.user, "outbox");
    return Reply(call->req, 202, Json{{"id", id}, {"via", "sync"}, {"queued", true}});
  }
  SmtpEnvelope env{AddressOf(du), r.to, item.message, {}};
  std::weak_ptr<bool> alive = alive_;
  const std::string user = du.user;
  evhttp_request* req = call->req;
  smtp_->Send(std::move(env), [this, alive, user, id, req](const Status& st) {
    if (alive.expired() || !*alive.lock()) return;
    if (!st.ok()) {
      LogWarning(user, "device API: composed " + std::to_string(id) + " not sent: " + st.ToString());
      return ReplyError(req, 502, "smtp_failed", "the mail relay did not accept the message");
    }
    Status m = store_->MarkOutboxSent(user, id);
    if (!m.ok()) LogError(user, "device API: cannot record sent " + std::to_string(id) + ": " + m.ToString());
    LogInfo(user, "device API: composed " + std::to_string(id) + " sent by SMTP");
    notifier_->NotifyConnectedAgent(user, "remote-change");
    Reply(req, 200, Json{{"id", id}, {"via", "smtp"}, {"queued", false}});
  });
}

void DeviceApi::DoSyncNow(Call* call) {
  std::unique_ptr<Call> owned(call);
  const DeviceUser& du = *call->user;
  if (notifier_->NotifyConnectedAgent(du.user, "operator")) {
    LogInfo(du.user, "device API: sync requested over the agent connection");
    return Reply(call->req, 200, Json{{"via", "connection"}});
  }
  if (options_.trigger_secret.empty() || du.address.empty()) {
    LogWarning(du.user, "device API: sync requested, no agent connected and no trigger mail "
                        "configured (trigger_secret_file, address=)");
    return ReplyError(call->req, 503, "no_agent",
                      "no agent is connected and trigger mail is not configured");
  }
  const int64_t now = time(nullptr);
  auto last = last_trigger_.find(du.user);
  if (last != last_trigger_.end() && now - last->second < options_.trigger_min_interval_s) {
    LogInfo(du.user, "device API: trigger mail rate-limited");
    return Reply(call->req, 200, Json{{"via", "trigger-mail"}, {"rate_limited", true}});
  }
  std::string message;
  Status s = BuildTriggerMessage(options_.trigger_secret, du.user, options_.trigger_from,
                                 du.address, now, &message);
  if (!s.ok()) {
    LogError(du.user, "device API: cannot build trigger mail: " + s.ToString());
    return ReplyError(call->req, 500, "internal", "cannot build the trigger message");
  }
  last_trigger_[du.user] = now;
  std::weak_ptr<bool> alive = alive_;
  const std::string user = du.user;
  evhttp_request* req = call->req;
  smtp_->Send(SmtpEnvelope{options_.trigger_from, du.address, message, {}},
              [alive, user, req](const Status& st) {
                if (alive.expired() || !*alive.lock()) return;
                if (!st.ok()) {
                  LogWarning(user, "trigger mail not sent: " + st.ToString());
                  return ReplyError(req, 502, "smtp_failed",
                                    "the mail relay did not accept the trigger message");
                }
                LogInfo(user, "trigger mail sent (no agent connected)");
                Reply(req, 200, Json{{"via", "trigger-mail"}});
              });
}

}  // namespace mobilesync::server
