#include "sync_agent/wire_protocol.h"

#include "common/log.h"
#include "common/user_name.h"
#include "wire/frame_encoder.h"
#include "wire/limits.h"
#include "wire/message_validator.h"

namespace mobilesync::agent {

WireProtocol::WireProtocol(Options options, SyncRequestFn on_sync_request)
    : options_(std::move(options)), on_sync_request_(std::move(on_sync_request)) {}

Status WireProtocol::Send(const wire::Frame& frame) {
  std::string out;
  Status s = wire::EncodeFrame(frame, &out);
  if (s.ok()) s = conn_->Send(out);
  return s;
}

void WireProtocol::OnConnected(RemoteConnection* conn) {
  conn_ = conn;
  welcomed_ = false;
  outstanding_ping_ = 0;
  next_session_id_ = 1;
  // A fresh decoder per connection: a frame cut by a dropped connection
  // must never be glued to the next connection's bytes. Until WELCOME,
  // the small handshake limits apply.
  decoder_ = std::make_unique<wire::FrameDecoder>(wire::DecoderLimits::Handshake());
  wire::pb::Hello hello;
  hello.set_min_version(wire::kProtocolVersion);
  hello.set_max_version(wire::kProtocolVersion);
  hello.set_agent_name(options_.agent_name);
  if (!options_.deployment_token.empty()) hello.set_deployment_token(options_.deployment_token);
  hello.set_max_window(options_.max_window);
  hello.set_max_message_bytes(options_.max_message_bytes);
  for (const std::string& c : options_.capabilities) hello.add_capabilities(c);
  Status s = Send(wire::MakeFrame(0, std::move(hello)));
  if (!s.ok()) conn->Fail(s);
}

Status WireProtocol::OnBytes(std::string_view data) {
  if (!decoder_) return Status::Corruption("bytes before the connection was set up");
  while (!data.empty()) {
    wire::Frame frame;
    wire::FrameDecoder::Result res;
    Status s = decoder_->Next(&data, &frame, &res);
    if (!s.ok()) return s;
    if (res == wire::FrameDecoder::Result::kNeedMore) break;
    s = wire::ValidateFrame(frame);
    if (!s.ok()) return s;
    s = Handle(std::move(frame));
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status WireProtocol::Handle(wire::Frame&& frame) {
  if (frame.session_id != 0) {
    auto it = sessions_.find(frame.session_id);
    if (it == sessions_.end()) {
      // Ended on our side while the frame was in flight (docs/protocol.md 10).
      LogDebug("", "remote: dropped " + wire::DescribeFrame(frame) + " of a closed session");
      return Status::OK();
    }
    SessionListener* l = it->second;
    l->OnSessionFrame(std::move(frame));  // may close the session
    return Status::OK();
  }
  if (const auto* err = frame.As<wire::pb::Error>()) {
    std::string detail = EscapeForLog(err->detail(), 200);
    return Status::Unavailable("server error " + wire::pb::ErrorCode_Name(err->code()), detail);
  }
  if (!welcomed_) {
    const auto* welcome = frame.As<wire::pb::Welcome>();
    if (welcome == nullptr)
      return Status::Corruption("expected WELCOME", wire::DescribeFrame(frame));
    if (welcome->version() != wire::kProtocolVersion)
      return Status::Corruption("server chose an unsupported protocol version",
                                std::to_string(welcome->version()));
    welcomed_ = true;
    server_name_ = welcome->server_name();
    window_ = welcome->window();
    decoder_->set_limits(wire::DecoderLimits());
    conn_->ResetBackoff();
    LogInfo("", "remote: handshake done (protocol " + std::to_string(welcome->version()) +
                    ", server " + EscapeForLog(server_name_, 100) + ", window " +
                    std::to_string(welcome->window()) + ")");
    std::vector<std::function<void()>> waiters;
    waiters.swap(ready_waiters_);
    for (auto& fn : waiters) fn();
    return Status::OK();
  }
  if (const auto* ping = frame.As<wire::pb::Ping>()) {
    wire::pb::Pong pong;
    pong.set_nonce(ping->nonce());
    return Send(wire::MakeFrame(0, std::move(pong)));
  }
  if (const auto* pong = frame.As<wire::pb::Pong>()) {
    if (pong->nonce() == outstanding_ping_) outstanding_ping_ = 0;
    ++pongs_;
    return Status::OK();
  }
  if (const auto* req = frame.As<wire::pb::SyncRequest>()) {
    const std::string& user = req->user();
    if (!ValidateUserName(user).ok())
      return Status::Corruption("SYNC_REQUEST for an invalid user name");
    ++sync_requests_;
    LogDebug(user, "remote: server asks for a sync");
    if (on_sync_request_) on_sync_request_(user);
    return Status::OK();
  }
  return Status::Corruption("unexpected frame on session 0", wire::DescribeFrame(frame));
}

uint32_t WireProtocol::OpenSession(SessionListener* listener) {
  if (!welcomed_ || conn_ == nullptr) return 0;
  if (next_session_id_ == 0) next_session_id_ = 1;  // wrapped: ids must rise
  uint32_t id = next_session_id_++;
  sessions_[id] = listener;
  return id;
}

void WireProtocol::CloseSession(uint32_t id) {
  sessions_.erase(id);
}

Status WireProtocol::SendSessionFrame(const wire::Frame& frame) {
  if (!welcomed_ || conn_ == nullptr) return Status::Unavailable("not connected to the server");
  Status s = wire::ValidateFrame(frame);
  if (!s.ok())
    return Status::InvalidArgument("agent bug: invalid frame " + wire::DescribeFrame(frame),
                                   s.ToString());
  return Send(frame);
}

void WireProtocol::WhenReady(std::function<void()> fn) {
  if (welcomed_) {
    fn();
    return;
  }
  ready_waiters_.push_back(std::move(fn));
}

void WireProtocol::OnKeepalive() {
  if (!welcomed_ || conn_ == nullptr) return;
  wire::pb::Ping ping;
  outstanding_ping_ = next_nonce_++;
  ping.set_nonce(outstanding_ping_);
  Status s = Send(wire::MakeFrame(0, std::move(ping)));
  if (!s.ok()) conn_->Fail(s);
}

void WireProtocol::OnDisconnected(const Status& why) {
  welcomed_ = false;
  decoder_.reset();
  conn_ = nullptr;
  std::map<uint32_t, SessionListener*> sessions;
  sessions.swap(sessions_);
  for (auto& [id, l] : sessions) l->OnSessionLost(why);
}

}  // namespace mobilesync::agent
