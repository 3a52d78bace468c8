#include "wire/message_validator.h"

#include <set>
#include <string>

#include "wire/limits.h"

namespace mobilesync::wire {

namespace {

// Collects the first problem; later checks are skipped once one failed.
class Checker {
 public:
  explicit Checker(FrameType type) : type_(type) {}

  void Require(bool ok, std::string_view field, std::string_view what) {
    if (!ok && status_.ok()) {
      status_ = Status::InvalidArgument(FrameTypeName(type_),
                                        std::string(field) + ": " + std::string(what));
    }
  }
  // A text field: at most `max` bytes of valid UTF-8.
  void Text(std::string_view value, size_t max, std::string_view field) {
    if (value.size() > max) {
      Require(false, field, "longer than " + std::to_string(max) + " bytes");
    }
    Require(IsValidUtf8(value), field, "not UTF-8");
  }
  void User(std::string_view user, std::string_view field) {
    Require(IsValidUserName(user), field, user.empty() ? "missing" : "not a valid user name");
  }
  void RemoteId(std::string_view id, std::string_view field) {
    Require(IsValidRemoteId(id), field, id.empty() ? "missing" : "not a valid remote id");
  }
  void Capabilities(const google::protobuf::RepeatedPtrField<std::string>& caps) {
    Require(static_cast<size_t>(caps.size()) <= kMaxCapabilities, "capabilities",
            "more than kMaxCapabilities");
    for (const std::string& c : caps) {
      Require(!c.empty() && c.size() <= kMaxCapabilityBytes, "capabilities", "empty or too long");
      Require(IsValidUtf8(c), "capabilities", "not UTF-8");
    }
  }
  // proto3 enums are open: a value unknown to this version parses fine.
  void Enum(int value, bool (*is_valid)(int), std::string_view field) {
    Require(value != 0, field, "missing");
    OptionalEnum(value, is_valid, field);
  }
  void OptionalEnum(int value, bool (*is_valid)(int), std::string_view field) {
    // Built only on failure: validation runs on every frame.
    if (!is_valid(value)) Require(false, field, "unknown value " + std::to_string(value));
  }

  Status status() const { return status_; }

 private:
  FrameType type_;
  Status status_;
};

void Check(const pb::Hello& m, Checker* c) {
  c->Require(m.min_version() >= 1, "min_version", "must be at least 1");
  c->Require(m.min_version() <= m.max_version(), "max_version", "below min_version");
  c->Require(!m.agent_name().empty(), "agent_name", "missing");
  c->Text(m.agent_name(), kMaxNameBytes, "agent_name");
  // Opaque bytes, not text: only the length is ours to check.
  c->Require(m.deployment_token().size() <= kMaxTokenBytes, "deployment_token",
             "longer than kMaxTokenBytes");
  c->Capabilities(m.capabilities());
  c->Require(m.max_window() >= 1 && m.max_window() <= kMaxWindow, "max_window",
             "not in 1..kMaxWindow");
  c->Require(m.max_message_bytes() >= 1 && m.max_message_bytes() <= kMaxBodyBytes,
             "max_message_bytes", "not in 1..kMaxBodyBytes");
}

void Check(const pb::Welcome& m, Checker* c) {
  c->Require(m.version() >= 1, "version", "must be at least 1");
  c->Require(!m.server_name().empty(), "server_name", "missing");
  c->Text(m.server_name(), kMaxNameBytes, "server_name");
  c->Capabilities(m.capabilities());
  c->Require(m.window() >= 1 && m.window() <= kMaxWindow, "window", "not in 1..kMaxWindow");
  c->Require(m.max_message_bytes() >= 1 && m.max_message_bytes() <= kMaxBodyBytes,
             "max_message_bytes", "not in 1..kMaxBodyBytes");
  c->Require(m.ping_interval_seconds() <= kMaxPingIntervalSeconds, "ping_interval_seconds",
             "over kMaxPingIntervalSeconds");
}

void Check(const pb::Ping&, Checker*) {}
void Check(const pb::Pong&, Checker*) {}

void Check(const pb::Error& m, Checker* c) {
  c->Enum(m.code(), pb::ErrorCode_IsValid, "code");
  c->Text(m.detail(), kMaxDetailBytes, "detail");
}

void Check(const pb::SyncRequest& m, Checker* c) {
  c->User(m.user(), "user");
  c->Enum(m.reason(), pb::SyncReason_IsValid, "reason");
}

void Check(const pb::BeginSession& m, Checker* c) {
  c->User(m.user(), "user");
}

void Check(const pb::BeginSessionReply& m, Checker* c) {
  c->Enum(m.kind(), pb::SyncKind_IsValid, "kind");
  // An update sync is only possible when both generations agree.
  c->Require(m.kind() != pb::SYNC_KIND_UPDATE || m.server_generation() != 0, "kind",
             "UPDATE without a server generation");
  c->Require(m.window_size() >= 1 && m.window_size() <= kMaxRemoteWindow, "window_size",
             "not in 1..kMaxRemoteWindow");
  c->Require(m.message_count() <= kMaxRemoteWindow, "message_count", "over kMaxRemoteWindow");
}

void Check(const pb::ListRequest& m, Checker* c) {
  c->Require(m.limit() >= 1 && m.limit() <= kMaxListEntries, "limit", "not in 1..kMaxListEntries");
  c->Require(m.offset() <= kMaxRemoteWindow, "offset", "over kMaxRemoteWindow");
}

void Check(const pb::List& m, Checker* c) {
  c->Require(static_cast<uint32_t>(m.entries_size()) <= kMaxListEntries, "entries",
             "more than kMaxListEntries");
  c->Require(m.total() <= kMaxRemoteWindow, "total", "over kMaxRemoteWindow");
  // Both lists are paged from one offset, as far as the longer goes: a page
  // past the end of one carries none of it (protocol.md 6.4).
  c->Require(m.entries_size() == 0 || uint64_t{m.offset()} + m.entries_size() <= m.total(),
             "entries", "beyond total");
  c->Require(static_cast<uint32_t>(m.destroyed_ids_size()) <= kMaxListEntries, "destroyed_ids",
             "more than kMaxListEntries");
  c->Require(m.destroyed_total() <= kMaxRemoteWindow, "destroyed_total", "over kMaxRemoteWindow");
  c->Require(m.destroyed_ids_size() == 0 ||
                 uint64_t{m.offset()} + m.destroyed_ids_size() <= m.destroyed_total(),
             "destroyed_ids", "beyond destroyed_total");
  for (const std::string& id : m.destroyed_ids()) c->RemoteId(id, "destroyed_ids");
  for (const pb::ListEntry& e : m.entries()) {
    c->RemoteId(e.remote_id(), "entries.remote_id");
    c->Require(e.date() >= 0, "entries.date", "negative");
    c->Require(e.size() <= kMaxBodyBytes, "entries.size", "over kMaxBodyBytes");
    c->Enum(e.state(), pb::MessageState_IsValid, "entries.state");
    c->Text(e.message_guid(), kMaxGuidBytes, "entries.message_guid");
    c->Text(e.message_id(), kMaxMessageIdBytes, "entries.message_id");
  }
}

void Check(const pb::Fetch& m, Checker* c) {
  c->Require(m.request_id() != 0, "request_id", "missing");
  c->RemoteId(m.remote_id(), "remote_id");
}

void CheckMessageBody(const Frame& f, const pb::MessageBody& m, Checker* c) {
  c->Require(m.request_id() != 0, "request_id", "missing");
  c->RemoteId(m.remote_id(), "remote_id");
  c->Enum(m.result(), pb::FetchResult_IsValid, "result");
  if (m.result() == pb::FETCH_RESULT_OK) {
    c->Require(!f.body.empty(), "body", "missing for FETCH_RESULT_OK");
    c->Enum(m.state(), pb::MessageState_IsValid, "state");
    c->Require(m.date() >= 0, "date", "negative");
  } else {
    c->Require(f.body.empty(), "body", "present without FETCH_RESULT_OK");
  }
}

void CheckAction(const Frame& f, const pb::Action& m, Checker* c) {
  c->Require(m.seq() != 0, "seq", "missing");
  c->Enum(m.kind(), pb::ActionKind_IsValid, "kind");
  c->OptionalEnum(m.state(), pb::MessageState_IsValid, "state");
  c->Text(m.insert_key(), kMaxInsertKeyBytes, "insert_key");
  c->Text(m.message_guid(), kMaxGuidBytes, "message_guid");
  c->Text(m.message_id(), kMaxMessageIdBytes, "message_id");
  c->Require(m.date() >= 0, "date", "negative");
  if (!m.remote_id().empty()) c->RemoteId(m.remote_id(), "remote_id");
  switch (m.kind()) {
    case pb::ACTION_KIND_INSERT:
    case pb::ACTION_KIND_FILED_AS_SENT:
      c->Require(!f.body.empty(), "body", "missing");
      // a->s names it by insert_key, s->a by the server's remote_id.
      c->Require(m.remote_id().empty() != m.insert_key().empty(), "insert_key",
                 "exactly one of remote_id and insert_key must be set");
      if (m.kind() == pb::ACTION_KIND_INSERT) {
        c->Enum(m.state(), pb::MessageState_IsValid, "state");
      }
      break;
    case pb::ACTION_KIND_DELIVER:
      c->Require(!f.body.empty(), "body", "missing");
      c->RemoteId(m.remote_id(), "remote_id");
      break;
    default:  // state changes, destroy, unmap: a message named, nothing more
      c->RemoteId(m.remote_id(), "remote_id");
      c->Require(f.body.empty(), "body", "not allowed for this kind");
      c->Require(m.insert_key().empty(), "insert_key", "not allowed for this kind");
      break;
  }
}

void Check(const pb::Ack& m, Checker* c) {
  c->Require(m.first_seq() != 0, "first_seq", "missing");
  c->Require(m.first_seq() <= m.last_seq(), "last_seq", "below first_seq");
  c->Require(m.last_seq() - m.first_seq() < kMaxWindow, "last_seq",
             "covers more than kMaxWindow actions");
  c->Require(static_cast<uint32_t>(m.assigned_size()) <= kMaxWindow, "assigned",
             "more than kMaxWindow entries");
  std::set<uint64_t> seen;
  for (const pb::AssignedId& a : m.assigned()) {
    c->Require(a.seq() >= m.first_seq() && a.seq() <= m.last_seq(), "assigned.seq",
               "outside first_seq..last_seq");
    c->Require(seen.insert(a.seq()).second, "assigned.seq", "duplicate");
    c->RemoteId(a.remote_id(), "assigned.remote_id");
  }
}

void Check(const pb::Nack& m, Checker* c) {
  c->Require(m.seq() != 0, "seq", "missing");
  c->Enum(m.reason(), pb::NackReason_IsValid, "reason");
  c->Text(m.detail(), kMaxDetailBytes, "detail");
}

void Check(const pb::SwapRequest&, Checker*) {}

void Check(const pb::SyncComplete& m, Checker* c) {
  c->Require(m.free_slots() <= kMaxRemoteWindow, "free_slots", "over kMaxRemoteWindow");
}

void Check(const pb::EndSession& m, Checker* c) {
  c->Enum(m.outcome(), pb::SessionOutcome_IsValid, "outcome");
  c->Text(m.detail(), kMaxDetailBytes, "detail");
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    // Lead byte: length and the range of the second byte (Unicode 15,
    // table 3-7), which excludes overlong forms, surrogates and > U+10FFFF.
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) < len) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (size_t i = 2; i < len; ++i) {
      if (p[i] < 0x80 || p[i] > 0xbf) return false;
    }
    p += len;
  }
  return true;
}

bool IsValidUserName(std::string_view user) {
  if (user.empty() || user.size() > kMaxUserBytes) return false;
  if (!IsValidUtf8(user)) return false;
  for (unsigned char ch : user) {
    if (ch <= 0x20 || ch == 0x7f) return false;
  }
  return true;
}

bool IsValidRemoteId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRemoteIdBytes) return false;
  for (unsigned char ch : id) {
    if (ch <= 0x20 || ch >= 0x7f) return false;
  }
  return true;
}

Status ValidateFrame(const Frame& frame) {
  if (std::holds_alternative<std::monostate>(frame.message)) {
    return Status::InvalidArgument("frame", "no message");
  }
  Checker c(frame.type());
  c.Require(frame.body.size() <= kMaxBodyBytes, "body", "over kMaxBodyBytes");
  c.Require(frame.body.empty() || FrameTypeAllowsBody(frame.type()), "body",
            "frame type carries no body");
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
        } else if constexpr (std::is_same_v<T, pb::MessageBody>) {
          CheckMessageBody(frame, m, &c);
        } else if constexpr (std::is_same_v<T, pb::Action>) {
          CheckAction(frame, m, &c);
        } else {
          Check(m, &c);
        }
      },
      frame.message);
  return c.status();
}

}  // namespace mobilesync::wire
