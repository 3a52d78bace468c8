#include "sync_server/agent_listener.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <deque>
#include <utility>
#include <vector>

#include "common/event_loop.h"
#include "common/log.h"
#include "wire/frame.h"
#include "wire/frame_decoder.h"
#include "wire/frame_encoder.h"
#include "wire/limits.h"
#include "wire/message_validator.h"
#include "wire/session_state.h"

namespace mobilesync::server {

namespace pb = wire::pb;
using wire::Direction;
using wire::Frame;
using wire::MakeFrame;
using wire::SessionState;

namespace {

constexpr const char* kServerName = "mobilesync-server";

std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

// Why a connection's TLS layer failed ("" if it did not). libevent moves
// OpenSSL's errors of a bufferevent into its own queue, so ERR_get_error()
// alone misses them; a client certificate that failed verification (expired,
// unknown CA) is named by the verify result.
std::string TlsFailure(bufferevent* bev) {
  std::string out;
  for (unsigned long e = bufferevent_get_openssl_error(bev); e != 0;
       e = bufferevent_get_openssl_error(bev)) {
    // Not TLS problems: libevent's pseudo error for a socket failure (library
    // 0), and OpenSSL 3's name for a peer closing without close_notify.
    if (ERR_GET_LIB(e) == 0) continue;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
    if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) continue;
#endif
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  if (ERR_peek_error() != 0) out += (out.empty() ? "" : "; ") + OpenSslErrors();
  SSL* ssl = bufferevent_openssl_get_ssl(bev);
  const long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK) {
    out += (out.empty() ? "" : "; ") + std::string("client certificate refused: ") +
           X509_verify_cert_error_string(verify);
  }
  return out;
}

std::string IdText(uint64_t id) {
  return std::to_string(id);
}

bool ParseRemoteId(const std::string& text, uint64_t* id) {
  if (text.empty() || text.size() > 19 || text[0] == '0') return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *id = v;
  return true;
}

pb::MessageState ToWire(MessageState s) {
  switch (s) {
    case MessageState::kUnread: return pb::MESSAGE_STATE_UNREAD;
    case MessageState::kRead: return pb::MESSAGE_STATE_READ;
    default: return pb::MESSAGE_STATE_TRASHED;
  }
}

MessageState FromWire(pb::MessageState s) {
  switch (s) {
    case pb::MESSAGE_STATE_READ: return MessageState::kRead;
    case pb::MESSAGE_STATE_TRASHED: return MessageState::kTrash;
    default: return MessageState::kUnread;
  }
}

bool ToStoreKind(pb::ActionKind k, ActionKind* out) {
  switch (k) {
    case pb::ACTION_KIND_INSERT: *out = ActionKind::kInsert; return true;
    case pb::ACTION_KIND_MARK_READ: *out = ActionKind::kMarkRead; return true;
    case pb::ACTION_KIND_MARK_UNREAD: *out = ActionKind::kMarkUnread; return true;
    case pb::ACTION_KIND_TRASH: *out = ActionKind::kTrash; return true;
    case pb::ACTION_KIND_RESTORE: *out = ActionKind::kRestore; return true;
    case pb::ACTION_KIND_DESTROY: *out = ActionKind::kDestroy; return true;
    case pb::ACTION_KIND_UNMAP: *out = ActionKind::kUnmap; return true;
    case pb::ACTION_KIND_FILED_AS_SENT: *out = ActionKind::kFiledAsSent; return true;
    default: return false;
  }
}

pb::ActionKind ToWireKind(ActionKind k) {
  switch (k) {
    case ActionKind::kInsert: return pb::ACTION_KIND_INSERT;
    case ActionKind::kMarkRead: return pb::ACTION_KIND_MARK_READ;
    case ActionKind::kMarkUnread: return pb::ACTION_KIND_MARK_UNREAD;
    case ActionKind::kTrash: return pb::ACTION_KIND_TRASH;
    case ActionKind::kRestore: return pb::ACTION_KIND_RESTORE;
    case ActionKind::kDestroy: return pb::ACTION_KIND_DESTROY;
    case ActionKind::kUnmap: return pb::ACTION_KIND_UNMAP;
    case ActionKind::kDeliver: return pb::ACTION_KIND_DELIVER;
    case ActionKind::kFiledAsSent: return pb::ACTION_KIND_FILED_AS_SENT;
  }
  return pb::ACTION_KIND_UNSPECIFIED;
}

// Header text that goes into a LIST entry must be valid UTF-8 within the
// protocol's limit; anything else is left out (the field is optional).
std::string WireText(const std::string& s, size_t max) {
  if (s.size() > max || !wire::IsValidUtf8(s)) return "";
  return s;
}

}  // namespace

// One TLS connection from an agent.
class AgentConnection {
 public:
  AgentConnection(AgentListener* listener, bufferevent* bev, std::string peer)
      : listener_(listener),
        bev_(bev),
        peer_(std::move(peer)),
        decoder_(wire::DecoderLimits::Handshake()) {}

  ~AgentConnection() {
    for (auto& [id, s] : sessions_) listener_->UnlockUser(s.user, this);
    if (bev_) bufferevent_free(bev_);
  }

  void Start() {
    bufferevent_setcb(bev_, &AgentConnection::OnRead, nullptr, &AgentConnection::OnEvent, this);
    // HELLO must come within 10 s of connecting (the TLS handshake included).
    timeval tv{10, 0};
    bufferevent_set_timeouts(bev_, &tv, nullptr);
    bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
  }

  bool authenticated() const { return agent_ != nullptr; }
  bool Serves(const std::string& user) const { return agent_ != nullptr && agent_->Allows(user); }
  const std::string& name() const { return name_; }

  // Sends SYNC_REQUEST for `user` (connection level).
  void RequestSync(const std::string& user, pb::SyncReason reason) {
    pb::SyncRequest m;
    m.set_user(user);
    m.set_reason(reason);
    Send(MakeFrame(0, std::move(m)));
  }

  // Tells the agent the server is going away, then closes after the flush.
  void Shutdown() { SendConnectionError(pb::ERROR_CODE_SHUTTING_DOWN, "server shutting down"); }

 private:
  struct Session {
    std::string user;
    SessionState state;
    pb::SyncKind kind = pb::SYNC_KIND_UNSPECIFIED;
    uint64_t through_seq = 0;  // the store's last action seq at BEGIN_SESSION
    // Agent actions already acknowledged: seq -> assigned remote id (0: none),
    // so a re-sent action is acknowledged again, never re-applied.
    std::map<uint64_t, uint64_t> agent_acks;
    // Server phase: our wire seq -> the store's action seq, in flight.
    std::map<uint64_t, uint64_t> in_flight;
    uint64_t next_wire_seq = 1;
    uint64_t last_store_seq = 0;  // highest store seq sent this session
    bool swapped = false;
    bool complete_sent = false;
    bool temporary_failure = false;
    // Initial sync: the remote ids of the DESTROYs in the action list when
    // the first page of the list was asked for (sent with the list).
    std::vector<uint64_t> destroyed;
    explicit Session(uint32_t window) : state(window) {}
  };

  // --- libevent callbacks ---------------------------------------------------
  static void OnRead(bufferevent* bev, void* arg) {
    auto* self = static_cast<AgentConnection*>(arg);
    self->ReadFrames(bufferevent_get_input(bev));
    self->MaybeRemove();
  }

  static void OnEvent(bufferevent* bev, short what, void* arg) {
    auto* self = static_cast<AgentConnection*>(arg);
    if (what & BEV_EVENT_CONNECTED) return;
    if (what & BEV_EVENT_TIMEOUT) {
      LogInfo("", "agent " + self->Who() + ": idle time-out, closing");
    } else if (what & BEV_EVENT_ERROR) {
      // A peer that just closes its socket shows up as an error without an
      // OpenSSL reason: that is a disconnect, not worth alarming anyone.
      // A refused client certificate is worth a reason.
      std::string err = TlsFailure(bev);
      LogInfo("", "agent " + self->Who() +
                      (err.empty() ? ": disconnected" : ": connection error (" + err + ")"));
    } else if (what & BEV_EVENT_EOF) {
      LogInfo("", "agent " + self->Who() + ": disconnected");
    }
    self->dead_ = true;
    self->MaybeRemove();
  }

  static void OnCloseTimer(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<AgentConnection*>(arg);
    self->dead_ = true;
    self->MaybeRemove();
  }

  static void OnFlushed(bufferevent* bev, void* arg) {
    auto* self = static_cast<AgentConnection*>(arg);
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) self->dead_ = true;
    self->MaybeRemove();
  }

  void MaybeRemove() {
    if (dead_) listener_->Remove(this);  // deletes this: nothing may follow
  }

  std::string Who() const {
    return (name_.empty() ? std::string("(unauthenticated)") : name_) + "@" + peer_;
  }

  // --- Frames in ------------------------------------------------------------
  // Group commit: the frames of one read are applied in one store batch and
  // every frame we answer with is held until the batch is on disk, so an
  // ACK never leaves before what it acknowledges is durable, and a burst of
  // W actions costs one fsync, not W.
  void ReadFrames(evbuffer* in) {
    Status b = listener_->store()->BeginBatch();
    if (b.ok()) {
      holding_ = true;
    } else {
      LogWarning("", "agent " + Who() + ": no group commit for this read: " + b.ToString());
    }
    ReadFramesHeld(in);
    FlushHeld();
  }

  // Ends the batch; sends what was held only if it committed. If it did
  // not, nothing it acknowledged may be believed: the connection closes and
  // the agent sends the unacknowledged actions again.
  void FlushHeld() {
    if (!holding_) return;
    holding_ = false;
    Status s = listener_->store()->EndBatch();
    std::string out = std::move(held_);
    held_.clear();
    if (!s.ok()) {
      LogError("", "agent " + Who() + ": store commit failed, closing: " + s.ToString());
      return SendConnectionError(pb::ERROR_CODE_INTERNAL, "store unavailable");
    }
    if (!out.empty()) bufferevent_write(bev_, out.data(), out.size());
  }

  void ReadFramesHeld(evbuffer* in) {
    while (!closing_ && evbuffer_get_length(in) > 0) {
      size_t n = evbuffer_get_contiguous_space(in);
      const char* data =
          reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ssize_t>(n)));
      std::string_view input(data, n);
      while (!closing_ && !input.empty()) {
        Frame frame;
        wire::FrameDecoder::Result result;
        size_t before = input.size();
        Status s = decoder_.Next(&input, &frame, &result);
        if (!s.ok()) {
          evbuffer_drain(in, n);
          LogWarning("", "agent " + Who() + ": bad frame: " + s.message());
          return SendConnectionError(pb::ERROR_CODE_PROTOCOL, "undecodable frame");
        }
        if (result == wire::FrameDecoder::Result::kFrame) OnFrame(std::move(frame));
        (void)before;
      }
      evbuffer_drain(in, n - input.size());
      if (!input.empty()) return;  // closing
    }
  }

  void OnFrame(Frame frame) {
    Status s = wire::ValidateFrame(frame);
    if (!s.ok()) {
      // Bad field values: the stream cannot be trusted (docs/protocol.md 10).
      LogWarning("", "agent " + Who() + ": invalid frame: " + s.ToString());
      return SendConnectionError(pb::ERROR_CODE_PROTOCOL, s.message());
    }
    if (!authenticated()) {
      if (frame.type() != wire::FrameType::kHello || frame.session_id != 0) {
        return SendConnectionError(pb::ERROR_CODE_PROTOCOL, "HELLO must come first");
      }
      return OnHello(*frame.As<pb::Hello>());
    }
    if (frame.session_id == 0) return OnConnectionFrame(frame);
    OnSessionFrame(std::move(frame));
  }

  void OnHello(const pb::Hello& m) {
    if (m.min_version() > wire::kProtocolVersion || m.max_version() < wire::kProtocolVersion) {
      LogWarning("", "agent " + peer_ + ": no common protocol version");
      return SendConnectionError(pb::ERROR_CODE_VERSION_UNSUPPORTED,
                                 "this server speaks version 1");
    }
    std::vector<std::string> names = PeerIdentities();
    std::string cn = names.empty() ? "" : names[0];
    const AgentEntry* agent = listener_->agents().Authenticate(names, m.deployment_token());
    const std::string claimed = EscapeForLog(m.agent_name(), 64);
    if (agent == nullptr) {
      // Never the token; the CN and the claimed name identify the attempt.
      LogWarning("", "agent " + peer_ + ": authentication failed (name=" + claimed +
                         ", cert_cn=" + (cn.empty() ? "none" : EscapeForLog(cn, 128)) +
                         ", token=" + (m.deployment_token().empty() ? "none" : "given") + ")");
      SendConnectionError(pb::ERROR_CODE_AUTHENTICATION, "authentication failed");
      // Close after a random 1-3 s, not at once: slows down guessing.
      dead_ = false;
      bufferevent_setcb(bev_, nullptr, nullptr, &AgentConnection::OnEvent, this);
      close_timer_.reset(
          evtimer_new(bufferevent_get_base(bev_), &AgentConnection::OnCloseTimer, this));
      unsigned char r = 0;
      (void)RAND_bytes(&r, 1);  // a fixed delay is still a delay
      timeval tv{1 + r % 2, (r % 100) * 10000};
      if (close_timer_) evtimer_add(close_timer_.get(), &tv);
      return;
    }
    agent_ = agent;
    name_ = agent->name;
    window_ = std::min<uint32_t>(m.max_window(), listener_->options().max_actions_in_flight);
    if (window_ == 0) window_ = 1;
    decoder_.set_limits(wire::DecoderLimits());
    // From now on the idle time-out (the agent pings), not the HELLO one.
    timeval idle{static_cast<time_t>(listener_->options().ping_interval_s * 3), 0};
    bufferevent_set_timeouts(bev_, &idle, nullptr);
    pb::Welcome w;
    for (const std::string& c : m.capabilities()) {
      if (c == "deliver") caps_deliver_ = true;
      if (c == "filed-as-sent") caps_filed_as_sent_ = true;
      if (c == "deliver" || c == "filed-as-sent" || c == "trigger-mail") w.add_capabilities(c);
    }
    w.set_version(wire::kProtocolVersion);
    w.set_server_name(kServerName);
    w.set_window(window_);
    w.set_max_message_bytes(wire::kMaxBodyBytes);
    w.set_ping_interval_seconds(listener_->options().ping_interval_s);
    Send(MakeFrame(0, std::move(w)));
    LogInfo("", "agent " + Who() + ": authenticated (window " + std::to_string(window_) + ")");
  }

  void OnConnectionFrame(const Frame& frame) {
    switch (frame.type()) {
      case wire::FrameType::kPing: {
        pb::Pong p;
        p.set_nonce(frame.As<pb::Ping>()->nonce());
        return Send(MakeFrame(0, std::move(p)));
      }
      case wire::FrameType::kPong: return;
      case wire::FrameType::kError:
        LogInfo("", "agent " + Who() + ": closed with error " +
                        pb::ErrorCode_Name(frame.As<pb::Error>()->code()) + ": " +
                        EscapeForLog(frame.As<pb::Error>()->detail(), 200));
        closing_ = true;
        dead_ = true;
        return;
      default:
        return SendConnectionError(pb::ERROR_CODE_PROTOCOL,
                                   std::string("unexpected ") +
                                       std::string(wire::FrameTypeName(frame.type())) +
                                       " on session 0");
    }
  }

  void OnSessionFrame(Frame frame) {
    const uint32_t id = frame.session_id;
    if (frame.type() == wire::FrameType::kBeginSession) {
      if (sessions_.count(id) != 0 || id <= highest_session_id_) {
        return SendConnectionError(pb::ERROR_CODE_PROTOCOL, "session ids must increase");
      }
      highest_session_id_ = id;
      return OnBeginSession(id, *frame.As<pb::BeginSession>());
    }
    auto it = sessions_.find(id);
    if (it == sessions_.end()) {
      // A session that has closed (an id at or below the last one opened):
      // the frame was in flight when it ended, drop it. A session never
      // opened: ERROR(PROTOCOL) on that id (docs/protocol.md 10).
      if (id <= highest_session_id_) return;
      return SendSessionError(id, pb::ERROR_CODE_PROTOCOL, "no such session");
    }
    Session& s = it->second;
    SessionState::Verdict verdict = SessionState::Verdict::kApply;
    Status st = s.state.Observe(Direction::kAgentToServer, frame, &verdict);
    if (!st.ok()) {
      LogWarning(s.user, "agent " + Who() + ": protocol violation: " + st.message());
      return FailSession(id, pb::ERROR_CODE_PROTOCOL, st.message());
    }
    if (verdict == SessionState::Verdict::kIgnore) return;
    switch (frame.type()) {
      case wire::FrameType::kListRequest: return OnListRequest(id, s, *frame.As<pb::ListRequest>());
      case wire::FrameType::kFetch: return OnFetch(id, s, *frame.As<pb::Fetch>());
      case wire::FrameType::kAction:
        return OnAction(id, s, *frame.As<pb::Action>(), std::move(frame.body),
                        verdict == SessionState::Verdict::kDuplicate);
      case wire::FrameType::kAck:
        if (verdict == SessionState::Verdict::kDuplicate) return;
        return OnAck(id, s, *frame.As<pb::Ack>());
      case wire::FrameType::kNack:
        if (verdict == SessionState::Verdict::kDuplicate) return;
        return OnNack(id, s, *frame.As<pb::Nack>());
      case wire::FrameType::kSwap:
        s.swapped = true;
        LogDebug(s.user, "swap: replaying the server's action list");
        return Pump(id, s);
      case wire::FrameType::kEndSession: return OnEndSession(id, s, *frame.As<pb::EndSession>());
      case wire::FrameType::kError:
        LogInfo(s.user, "agent " + Who() + ": session ended with error " +
                            pb::ErrorCode_Name(frame.As<pb::Error>()->code()));
        return CloseSession(id);
      default: return FailSession(id, pb::ERROR_CODE_PROTOCOL, "unexpected frame");
    }
  }

  void OnBeginSession(uint32_t id, const pb::BeginSession& m) {
    const std::string& user = m.user();
    if (!agent_->Allows(user)) {
      LogWarning(user, "agent " + Who() + ": refused session: agent not provisioned for this user");
      SendSessionError(id, pb::ERROR_CODE_USER_NOT_PERMITTED, "user not permitted");
      // More than 10 refused users in a minute looks like enumeration.
      const int64_t now = time(nullptr);
      refusals_.push_back(now);
      while (!refusals_.empty() && refusals_.front() < now - 60) refusals_.erase(refusals_.begin());
      if (refusals_.size() > 10) {
        LogWarning("", "agent " + Who() + ": too many refused users, closing");
        SendConnectionError(pb::ERROR_CODE_USER_NOT_PERMITTED, "too many refused users");
      }
      return;
    }
    if (sessions_.size() >= listener_->options().max_sessions_per_connection) {
      return SendSessionError(id, pb::ERROR_CODE_LIMIT_EXCEEDED, "too many sessions");
    }
    if (!listener_->LockUser(user, this)) {
      LogInfo(user, "agent " + Who() + ": refused session: another session is running");
      return SendSessionError(id, pb::ERROR_CODE_SESSION_BUSY,
                              "a session for this user is running");
    }
    MessageStore* store = listener_->store();
    UserInfo info;
    Status st = store->EnsureUser(user, listener_->WindowFor(user));
    if (st.ok()) st = store->GetUser(user, &info);
    if (!st.ok()) {
      listener_->UnlockUser(user, this);
      LogError(user, "store failed at session start: " + st.ToString());
      return SendSessionError(id, pb::ERROR_CODE_INTERNAL, "store unavailable");
    }
    Frame begin = MakeFrame(id, m);
    auto [it, inserted] = sessions_.emplace(id, Session(window_));
    Session& s = it->second;
    s.user = user;
    s.through_seq = info.last_action_seq;
    SessionState::Verdict v;
    (void)s.state.Observe(Direction::kAgentToServer, begin, &v);
    s.kind = (info.generation != 0 && info.generation == m.agent_generation())
                 ? pb::SYNC_KIND_UPDATE
                 : pb::SYNC_KIND_INITIAL;
    pb::BeginSessionReply r;
    r.set_server_generation(info.generation);
    r.set_kind(s.kind);
    r.set_window_size(info.window_size);
    r.set_message_count(info.window_count);
    r.set_pending_actions(
        static_cast<uint32_t>(std::min<uint64_t>(info.pending_actions, UINT32_MAX)));
    SendInSession(id, MakeFrame(id, std::move(r)));
    LogInfo(user, std::string("agent ") + Who() + ": " +
                      (s.kind == pb::SYNC_KIND_UPDATE ? "update" : "initial") + " sync begins (" +
                      std::to_string(info.window_count) + "/" + std::to_string(info.window_size) +
                      " in the window, " + std::to_string(info.pending_actions) +
                      " server actions)");
  }

  // The remote ids of every DESTROY in the user's action list, in order,
  // at most kMaxRemoteWindow.
  Status PendingDestroys(const std::string& user, std::vector<uint64_t>* out) {
    out->clear();
    uint64_t after = 0;
    for (;;) {
      std::vector<ServerAction> page;
      Status st = listener_->store()->PendingActions(user, after, 4096, &page);
      if (!st.ok()) return st;
      for (const ServerAction& a : page) {
        if (a.kind != ActionKind::kDestroy) continue;
        if (out->size() >= wire::kMaxRemoteWindow) {
          LogWarning(user, "over " + std::to_string(wire::kMaxRemoteWindow) +
                               " destroys pending: the initial sync's list names the first");
          return Status::OK();
        }
        out->push_back(a.remote_id);
      }
      if (page.size() < 4096) return Status::OK();
      after = page.back().seq;
    }
  }

  // An initial sync's list. Besides the window, it names the messages the
  // device destroyed whose DESTROY is still in the action list: the
  // comparison alone cannot tell a destroyed message from one that left
  // the window, and the agent would copy a destroyed one back (an update
  // session whose END_SESSION reply was lost is followed by an initial
  // sync, which drops the action list).
  void OnListRequest(uint32_t id, Session& s, const pb::ListRequest& m) {
    std::vector<MessageRecord> window;
    Status st = listener_->store()->ListWindow(s.user, &window);
    if (!st.ok()) return StoreFailed(id, s, st);
    if (m.offset() == 0) {
      st = PendingDestroys(s.user, &s.destroyed);
      if (!st.ok()) return StoreFailed(id, s, st);
    }
    const size_t pages = std::max(window.size(), s.destroyed.size());
    const size_t offset = std::min<size_t>(m.offset(), pages);
    const size_t end = offset + m.limit();
    pb::List list;
    list.set_offset(static_cast<uint32_t>(offset));
    list.set_total(static_cast<uint32_t>(window.size()));
    list.set_destroyed_total(static_cast<uint32_t>(s.destroyed.size()));
    for (size_t i = offset; i < s.destroyed.size() && i < end; ++i) {
      list.add_destroyed_ids(IdText(s.destroyed[i]));
    }
    for (size_t i = offset; i < window.size() && i < end; ++i) {
      const MessageRecord& r = window[i];
      pb::ListEntry* e = list.add_entries();
      e->set_remote_id(IdText(r.id));
      e->set_date(r.date < 0 ? 0 : r.date);
      e->set_size(r.size);
      e->set_state(ToWire(r.state));
      e->set_message_guid(WireText(r.guid, wire::kMaxGuidBytes));
      e->set_message_id(WireText(r.message_id, wire::kMaxMessageIdBytes));
    }
    SendInSession(id, MakeFrame(id, std::move(list)));
  }

  void OnFetch(uint32_t id, Session& s, const pb::Fetch& m) {
    pb::MessageBody r;
    r.set_request_id(m.request_id());
    r.set_remote_id(m.remote_id());
    uint64_t rid = 0;
    MessageRecord rec;
    Status st = ParseRemoteId(m.remote_id(), &rid)
                    ? listener_->store()->GetMessage(s.user, rid, &rec)
                    : Status::NotFound("bad remote id");
    std::string body;
    if (st.ok() && !rec.body.empty()) {
      r.set_result(pb::FETCH_RESULT_OK);
      r.set_date(rec.date < 0 ? 0 : rec.date);
      r.set_state(ToWire(rec.state));
      body = std::move(rec.body);
    } else if (st.ok() || st.IsNotFound()) {
      r.set_result(pb::FETCH_RESULT_NOT_FOUND);
    } else {
      return StoreFailed(id, s, st);
    }
    SendInSession(id, MakeFrame(id, std::move(r), std::move(body)));
  }

  void OnAction(uint32_t id, Session& s, const pb::Action& m, std::string body, bool duplicate) {
    if (duplicate) {
      // Acknowledged before (or still being answered): answer again with
      // the same remote id, apply nothing.
      auto it = s.agent_acks.find(m.seq());
      if (it == s.agent_acks.end()) return;  // nacked: the nack stands
      return SendAck(id, s, m.seq(), m.kind(), it->second);
    }
    AgentAction a;
    if (!ToStoreKind(m.kind(), &a.kind)) {
      return SendNack(id, s, m.seq(), pb::NACK_REASON_INVALID, "not an agent action");
    }
    // A temporary failure earlier in this session: every later action in
    // flight is nacked the same way, unapplied, so none overtakes it.
    if (s.temporary_failure) {
      return SendNack(id, s, m.seq(), pb::NACK_REASON_TEMPORARY_FAILURE, "earlier action failed");
    }
    // Destroying or unmapping what is not there is done, not an error
    // (docs/protocol.md 7.5): a re-sent DESTROY must not be nacked.
    const bool gone_is_done = a.kind == ActionKind::kDestroy || a.kind == ActionKind::kUnmap;
    if (!m.remote_id().empty() && !ParseRemoteId(m.remote_id(), &a.remote_id)) {
      if (gone_is_done) {
        s.agent_acks[m.seq()] = 0;
        return SendAck(id, s, m.seq(), m.kind(), 0);
      }
      return SendNack(id, s, m.seq(), pb::NACK_REASON_UNKNOWN_REMOTE_ID,
                      "not an id of this server");
    }
    a.insert_key = m.insert_key();
    a.date = m.date();
    a.state = FromWire(m.state());
    a.message_id = m.message_id();
    a.guid = m.message_guid();
    a.body = std::move(body);
    ApplyResult r;
    Status st = listener_->store()->ApplyAgentAction(s.user, a, &r);
    if (!st.ok()) {
      LogError(s.user,
               "applying agent action " + std::to_string(m.seq()) + " failed: " + st.ToString());
      s.temporary_failure = true;
      return SendNack(id, s, m.seq(), pb::NACK_REASON_TEMPORARY_FAILURE, "store unavailable");
    }
    if (r.outcome == ApplyOutcome::kUnknownId && !gone_is_done) {
      LogInfo(s.user, std::string("agent ") + ActionKindName(a.kind) + " of unknown remote " +
                          m.remote_id() + ": refused");
      return SendNack(id, s, m.seq(), pb::NACK_REASON_UNKNOWN_REMOTE_ID, "unknown remote id");
    }
    LogDebug(s.user, std::string("agent ") + ActionKindName(a.kind) + " " +
                         (r.assigned_id ? IdText(r.assigned_id) : m.remote_id()) + ": " +
                         ApplyOutcomeName(r.outcome));
    s.agent_acks[m.seq()] = r.assigned_id;
    SendAck(id, s, m.seq(), m.kind(), r.assigned_id);
    // During the server phase a GC-made UNMAP may follow at once.
    if (s.swapped && !s.complete_sent) Pump(id, s);
  }

  void SendAck(uint32_t id, Session& s, uint64_t seq, pb::ActionKind kind, uint64_t assigned) {
    pb::Ack ack;
    ack.set_first_seq(seq);
    ack.set_last_seq(seq);
    if (kind == pb::ACTION_KIND_INSERT || kind == pb::ACTION_KIND_FILED_AS_SENT) {
      pb::AssignedId* a = ack.add_assigned();
      a->set_seq(seq);
      a->set_remote_id(IdText(assigned));
    }
    (void)s;
    SendInSession(id, MakeFrame(id, std::move(ack)));
  }

  void SendNack(uint32_t id, Session& s, uint64_t seq, pb::NackReason reason, const char* detail) {
    (void)s;
    pb::Nack n;
    n.set_seq(seq);
    n.set_reason(reason);
    n.set_detail(detail);
    SendInSession(id, MakeFrame(id, std::move(n)));
  }

  // Server phase: keep up to W of our actions in flight, then SYNC_COMPLETE.
  void Pump(uint32_t id, Session& s) {
    MessageStore* store = listener_->store();
    while (sessions_.count(id) != 0 && s.in_flight.size() < window_) {
      std::vector<ServerAction> next;
      Status st = store->PendingActions(s.user, s.last_store_seq, 1, &next);
      if (!st.ok()) return StoreFailed(id, s, st);
      if (next.empty()) break;
      const ServerAction& a = next[0];
      s.last_store_seq = a.seq;
      // Without the capability the agent cannot take it: it stays in the
      // outbox (and the action list) until an agent that can comes.
      if ((a.kind == ActionKind::kDeliver && !caps_deliver_) ||
          (a.kind == ActionKind::kFiledAsSent && !caps_filed_as_sent_)) {
        continue;
      }
      pb::Action m;
      std::string body;
      m.set_kind(ToWireKind(a.kind));
      m.set_remote_id(IdText(a.remote_id));
      bool skip = false;
      if (a.kind == ActionKind::kInsert) {
        MessageRecord rec;
        st = store->GetMessage(s.user, a.remote_id, &rec);
        if (st.IsNotFound() || (st.ok() && rec.body.empty())) {
          skip = true;  // left the window since: nothing to insert
        } else if (!st.ok()) {
          return StoreFailed(id, s, st);
        } else {
          m.set_date(rec.date < 0 ? 0 : rec.date);
          m.set_state(ToWire(rec.state));
          m.set_message_id(WireText(rec.message_id, wire::kMaxMessageIdBytes));
          m.set_message_guid(WireText(rec.guid, wire::kMaxGuidBytes));
          body = std::move(rec.body);
        }
      } else if (a.kind == ActionKind::kDeliver || a.kind == ActionKind::kFiledAsSent) {
        OutboxItem item;
        st = store->GetOutboxItem(s.user, a.remote_id, &item);
        if (!st.ok()) return StoreFailed(id, s, st);
        body = std::move(item.message);
      } else if (a.kind != ActionKind::kDestroy && a.kind != ActionKind::kUnmap) {
        m.set_state(ToWire(a.state));
      }
      if (skip) {
        (void)store->RemoveAction(s.user, a.seq);  // best effort; retried next sync
        continue;
      }
      const uint64_t wire_seq = s.next_wire_seq++;
      m.set_seq(wire_seq);
      s.in_flight[wire_seq] = a.seq;
      SendInSession(id, MakeFrame(id, std::move(m), std::move(body)));
    }
    if (sessions_.count(id) != 0 && s.in_flight.empty() && !s.complete_sent) {
      UserInfo info;
      Status st = store->GetUser(s.user, &info);
      if (!st.ok()) return StoreFailed(id, s, st);
      pb::SyncComplete c;
      c.set_last_seq(s.next_wire_seq - 1);
      c.set_free_slots(info.window_size > info.window_count ? info.window_size - info.window_count
                                                            : 0);
      s.complete_sent = true;
      SendInSession(id, MakeFrame(id, std::move(c)));
      LogDebug(s.user, "sync complete: " + std::to_string(s.next_wire_seq - 1) + " server actions");
    }
  }

  void OnAck(uint32_t id, Session& s, const pb::Ack& m) {
    for (uint64_t seq = m.first_seq(); seq <= m.last_seq(); ++seq) {
      auto it = s.in_flight.find(seq);
      if (it == s.in_flight.end()) continue;
      Status st = listener_->store()->RemoveAction(s.user, it->second);
      if (!st.ok()) return StoreFailed(id, s, st);
      s.in_flight.erase(it);
    }
    Pump(id, s);
  }

  void OnNack(uint32_t id, Session& s, const pb::Nack& m) {
    auto it = s.in_flight.find(m.seq());
    if (it == s.in_flight.end()) return;
    const bool temporary =
        m.reason() == pb::NACK_REASON_STORE_FULL || m.reason() == pb::NACK_REASON_TEMPORARY_FAILURE;
    LogWarning(s.user, "agent refused server action " + std::to_string(it->second) + " (" +
                           pb::NackReason_Name(m.reason()) + ")" +
                           (temporary ? ", kept for the next sync" : ", dropped"));
    if (!temporary) {
      Status st = listener_->store()->RemoveAction(s.user, it->second);
      if (!st.ok()) return StoreFailed(id, s, st);
    }
    s.in_flight.erase(it);
    Pump(id, s);
  }

  void OnEndSession(uint32_t id, Session& s, const pb::EndSession& m) {
    pb::EndSession reply;
    reply.set_outcome(pb::SESSION_OUTCOME_ABORTED);
    if (m.outcome() == pb::SESSION_OUTCOME_OK) {
      uint64_t generation = 0;
      Status st;
      // A new generation at the end of every session, update syncs too
      // (docs/protocol.md 6.3): a server restored from an older copy of its
      // database then holds a generation the agent has moved past, and the
      // next session is an initial sync, not an update sync against a state
      // the server forgot (tests/fault/store_fault_test.cc). For an update
      // sync through_seq 0 drops no action entry (seqs start at 1).
      st = listener_->store()->CommitInitialSync(
          s.user, s.kind == pb::SYNC_KIND_INITIAL ? s.through_seq : 0, &generation);
      if (!st.ok()) return StoreFailed(id, s, st);
      reply.set_outcome(pb::SESSION_OUTCOME_OK);
      reply.set_new_generation(generation);
    }
    // The window may be over N after the pull: collect now; the UNMAPs
    // travel at the next sync.
    std::vector<uint64_t> collected;
    Status gc = listener_->store()->CollectGarbage(s.user, &collected);
    if (!gc.ok()) LogError(s.user, "garbage collection failed: " + gc.ToString());
    const bool ok = reply.outcome() == pb::SESSION_OUTCOME_OK;
    const std::string user = s.user;
    SendInSession(id, MakeFrame(id, std::move(reply)));
    const char* what = ok ? "completed" : "aborted by the agent";
    if (!ok && m.no_change()) what = "completed: nothing to do on either side";
    LogInfo(user,
            std::string("agent ") + Who() + ": sync " + what +
                (collected.empty() ? "" : ", " + std::to_string(collected.size()) + " collected"));
    CloseSession(id);
  }

  // --- Frames out -----------------------------------------------------------
  void Send(const Frame& frame) {
    if (closing_) return;
    std::string out;
    Status s = wire::EncodeFrame(frame, &out);
    if (!s.ok()) {
      LogError("", "cannot encode " + wire::DescribeFrame(frame) + ": " + s.ToString());
      return;
    }
    if (holding_) {
      held_ += out;
      return;
    }
    bufferevent_write(bev_, out.data(), out.size());
  }

  // Our own frames go through the session's order checker too: a bug of
  // ours is caught here, not by the agent.
  void SendInSession(uint32_t id, Frame frame) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      SessionState::Verdict v;
      Status st = it->second.state.Observe(Direction::kServerToAgent, frame, &v);
      if (!st.ok()) {
        LogError(it->second.user,
                 "server protocol bug: " + st.message() + " in " + wire::DescribeFrame(frame));
      }
    }
    Send(frame);
  }

  void SendSessionError(uint32_t id, pb::ErrorCode code, const std::string& detail) {
    pb::Error e;
    e.set_code(code);
    e.set_detail(detail.substr(0, wire::kMaxDetailBytes));
    Send(MakeFrame(id, std::move(e)));
  }

  void FailSession(uint32_t id, pb::ErrorCode code, const std::string& detail) {
    SendSessionError(id, code, detail);
    CloseSession(id);
  }

  void StoreFailed(uint32_t id, Session& s, const Status& st) {
    LogError(s.user, "store failed during sync: " + st.ToString());
    FailSession(id, pb::ERROR_CODE_INTERNAL, "store unavailable");
  }

  void CloseSession(uint32_t id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    listener_->UnlockUser(it->second.user, this);
    sessions_.erase(it);
  }

  void SendConnectionError(pb::ErrorCode code, const std::string& detail) {
    if (closing_) return;
    FlushHeld();           // what this read applied and answered is committed first
    if (closing_) return;  // the commit failed: already closing
    pb::Error e;
    e.set_code(code);
    e.set_detail(detail.substr(0, wire::kMaxDetailBytes));
    Send(MakeFrame(0, std::move(e)));
    closing_ = true;
    for (auto& [id, s] : sessions_) listener_->UnlockUser(s.user, this);
    sessions_.clear();
    // Close once the ERROR is written; stop reading meanwhile.
    bufferevent_disable(bev_, EV_READ);
    bufferevent_setcb(bev_, nullptr, &AgentConnection::OnFlushed, &AgentConnection::OnEvent, this);
    if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) dead_ = true;
  }

 public:
  // For Stop(): close from outside a callback.
  void ShutdownAndMaybeClose() { Shutdown(); }

 private:
  // The verified client certificate's identities: its DNS subject
  // alternative names, or its subject CN when it has none (docs/protocol.md
  // section 4). Empty without a certificate the TLS layer verified.
  std::vector<std::string> PeerIdentities() const {
    std::vector<std::string> out;
    SSL* ssl = bufferevent_openssl_get_ssl(bev_);
    if (ssl == nullptr) return out;
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr) return out;
    if (SSL_get_verify_result(ssl) == X509_V_OK) {
      auto* sans = static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
      for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS) continue;
        const unsigned char* p = ASN1_STRING_get0_data(g->d.dNSName);
        out.emplace_back(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(ASN1_STRING_length(g->d.dNSName)));
      }
      GENERAL_NAMES_free(sans);
      if (out.empty()) {
        char buf[256];
        int n =
            X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
        if (n > 0) out.emplace_back(buf, static_cast<size_t>(n));
      }
    }
    X509_free(cert);
    return out;
  }

  AgentListener* listener_;
  bufferevent* bev_;
  std::string peer_;
  wire::FrameDecoder decoder_;
  const AgentEntry* agent_ = nullptr;
  std::string name_;
  uint32_t window_ = wire::kDefaultWindow;
  std::map<uint32_t, Session> sessions_;
  uint32_t highest_session_id_ = 0;
  std::vector<int64_t> refusals_;  // times of refused users (enumeration guard)
  bool caps_deliver_ = false;
  bool caps_filed_as_sent_ = false;
  EventPtr close_timer_;  // delayed close after a failed authentication
  bool closing_ = false;  // an ERROR ended the connection: flush, then close
  bool dead_ = false;     // delete at the end of the current callback
  bool holding_ = false;  // in a store batch: frames out wait in held_
  std::string held_;
};

// --------------------------------------------------------------------------

AgentListener::AgentListener(event_base* base, MessageStore* store, const AgentDirectory* agents,
                             const DeviceDirectory* devices, AgentListenerOptions options)
    : base_(base),
      store_(store),
      agents_(agents),
      devices_(devices),
      options_(std::move(options)) {}

AgentListener::~AgentListener() {
  listener_.reset();
  connections_.clear();
}

Status AgentListener::Start() {
  ctx_.reset(SSL_CTX_new(TLS_server_method()));
  if (!ctx_) return Status::IOError("TLS", OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx_.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx_.get(), options_.cert_file.c_str()) != 1) {
    return Status::InvalidArgument("cannot load tls_cert_file " + options_.cert_file,
                                   OpenSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx_.get(), options_.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx_.get()) != 1) {
    return Status::InvalidArgument("cannot load tls_key_file " + options_.key_file,
                                   OpenSslErrors());
  }
  if (!options_.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx_.get(), options_.client_ca_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("cannot load tls_client_ca_file " + options_.client_ca_file,
                                     OpenSslErrors());
    }
    // Ask for a certificate and verify it when given; an agent without one
    // may still authenticate by token (agents_file decides).
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
  }
  sockaddr_storage ss{};
  int len = sizeof ss;
  std::string spec = options_.host + ":" + std::to_string(options_.port);
  if (options_.host.find(':') != std::string::npos) {
    spec = "[" + options_.host + "]:" + std::to_string(options_.port);
  }
  if (evutil_parse_sockaddr_port(spec.c_str(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return Status::InvalidArgument("listen address must be numeric", options_.host);
  }
  listener_.reset(
      evconnlistener_new_bind(base_, &AgentListener::OnAccept, this,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                              128, reinterpret_cast<sockaddr*>(&ss), len));
  if (!listener_) {
    return Status::FromErrno("cannot listen on " + spec, EVUTIL_SOCKET_ERROR());
  }
  evconnlistener_set_error_cb(listener_.get(), &AgentListener::OnAcceptError);
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (getsockname(evconnlistener_get_fd(listener_.get()), reinterpret_cast<sockaddr*>(&bound),
                  &blen) == 0) {
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  return Status::OK();
}

void AgentListener::Stop() {
  listener_.reset();
  for (auto& [c, owned] : connections_) c->ShutdownAndMaybeClose();
}

namespace {
constexpr size_t kMaxSingleRead = 1u << 20;
}  // namespace

void AgentListener::OnAccept(evconnlistener* /*l*/, evutil_socket_t fd, sockaddr* addr, int /*len*/,
                             void* arg) {
  auto* self = static_cast<AgentListener*>(arg);
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr->sa_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  SSL* ssl = SSL_new(self->ctx_.get());
  if (ssl == nullptr) {
    LogError("", "TLS: SSL_new failed: " + OpenSslErrors());
    evutil_closesocket(fd);
    return;
  }
  // With CLOSE_ON_FREE the bufferevent owns fd and ssl from here on, even
  // when creating it fails.
  bufferevent* bev =
      bufferevent_openssl_socket_new(self->base_, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (bev == nullptr) {
    LogError("", "TLS: cannot create a connection for " + std::string(host));
    return;
  }
  // libevent reads 16 KiB per callback by default: less than one message,
  // so one group commit (ReadFrames) per action. Read what has arrived.
  bufferevent_set_max_single_read(bev, kMaxSingleRead);
  auto conn =
      std::make_unique<AgentConnection>(self, bev, std::string(host) + ":" + std::to_string(port));
  AgentConnection* raw = conn.get();
  self->connections_.emplace(raw, std::move(conn));
  raw->Start();
}

void AgentListener::OnAcceptError(evconnlistener* /*l*/, void* /*arg*/) {
  // EMFILE and the like: libevent keeps listening; say so once per event.
  LogWarning("",
             std::string("accept failed: ") + evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void AgentListener::Remove(AgentConnection* conn) {
  connections_.erase(conn);
}

bool AgentListener::LockUser(const std::string& user, AgentConnection* conn) {
  auto [it, inserted] = user_locks_.emplace(user, conn);
  return inserted;
}

void AgentListener::UnlockUser(const std::string& user, AgentConnection* conn) {
  auto it = user_locks_.find(user);
  if (it != user_locks_.end() && it->second == conn) user_locks_.erase(it);
}

uint32_t AgentListener::WindowFor(const std::string& user) const {
  const DeviceUser* du = devices_->Find(user);
  return du != nullptr && du->window != 0 ? du->window : options_.default_window;
}

bool AgentListener::AgentConnected(const std::string& user) const {
  for (const auto& [c, owned] : connections_) {
    if (c->Serves(user)) return true;
  }
  return false;
}

bool AgentListener::NotifyConnectedAgent(const std::string& user, const char* reason) {
  pb::SyncReason r = pb::SYNC_REASON_REMOTE_CHANGE;
  if (std::string(reason) == "outbox") r = pb::SYNC_REASON_OUTBOX;
  if (std::string(reason) == "operator") r = pb::SYNC_REASON_OPERATOR;
  // Prefer the connection that syncs the user now or synced it last.
  auto lock = user_locks_.find(user);
  AgentConnection* target = lock != user_locks_.end() ? lock->second : nullptr;
  for (const auto& [c, owned] : connections_) {
    if (target != nullptr) break;
    if (c->Serves(user)) target = c;
  }
  if (target == nullptr) return false;
  target->RequestSync(user, r);
  LogInfo(user, std::string("asked agent ") + target->name() + " to sync (" + reason + ")");
  return true;
}

}  // namespace mobilesync::server
