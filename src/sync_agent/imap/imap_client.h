// An asynchronous IMAP client on libevent, for the agent's access to the
// local Dovecot as `user*master` (plain TCP on loopback, or TLS).
//
// Model: isync's drv_imap.c, in our own words.
//  * Every command carries its continuation (a typed callback) and gets
//    EXACTLY ONE answer: the tagged result, or a cancellation (Unavailable)
//    when the connection fails or closes, or a Timeout.
//  * Commands wait in `pending_`, then move to `in_flight_` (replies matched
//    by tag). The gate (CanSend) pipelines up to max_in_flight commands but
//    holds back while a synchronising literal waits for "+", while IDLE runs,
//    and while the output buffer is over a watermark (so that queued commands
//    stay cancellable and memory stays bounded).
//  * Literals use LITERAL+ when the server offers it (Dovecot does), else
//    the command is sent in chunks, each after the server's "+".
//  * Untagged responses are offered to in-flight commands oldest first (a
//    FETCH consumes FETCH data, GETMETADATA the METADATA lines...); the rest
//    update the client's own state (capabilities, EXISTS, ...).
//  * A callback may destroy the client: dispatch holds a weak reference
//    guard and stops touching members once the client is gone.
//  * The read time-out runs only while a reply is expected.
//
// Destroying the client answers every outstanding command with
// Unavailable("IMAP client destroyed"); those callbacks must not use the
// client any more. Credentials never reach a log line.
#ifndef MOBILESYNC_SYNC_AGENT_IMAP_IMAP_CLIENT_H_
#define MOBILESYNC_SYNC_AGENT_IMAP_IMAP_CLIENT_H_

#include <event2/event.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/event_loop.h"
#include "common/status.h"
#include "sync_agent/event_ptrs.h"
#include "sync_agent/imap/imap_parser.h"
#include "sync_agent/tls_context.h"

namespace mobilesync::agent::imap {

struct ImapClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 143;
  // TLS from the first byte (imaps). Requires tls != nullptr.
  bool use_tls = false;
  const TlsClientContext* tls = nullptr;
  // Used for logs only (e.g. the user the connection works for).
  std::string log_user;
  uint64_t connect_timeout_ms = 10000;
  // Inactivity time-out while a reply is expected.
  uint64_t command_timeout_ms = 60000;
  size_t max_in_flight = 16;
  // The gate holds commands back while more than this is unsent.
  size_t output_watermark = 256 * 1024;
  ImapParserLimits limits;
};

// The tagged answer to one command.
struct CommandResult {
  Status status;                // OK; NO -> Aborted; BAD -> InvalidArgument;
                                // lost connection -> Unavailable; Timeout
  std::vector<ImapValue> code;  // the tagged response's [CODE ...]
  std::string text;
};

struct MailboxInfo {
  uint64_t uidvalidity = 0;
  uint64_t uidnext = 0;
  uint64_t exists = 0;
  uint64_t highestmodseq = 0;  // 0 without CONDSTORE
  bool read_only = false;
  std::vector<std::string> flags;
};

struct FetchedMessage {
  uint64_t seq = 0;
  uint64_t uid = 0;
  std::vector<std::string> flags;
  bool has_flags = false;
  std::string internaldate;
  uint64_t size = 0;
  uint64_t modseq = 0;
  std::string guid;  // X-GUID (Dovecot)
  std::string body;  // BODY[] / BODY.PEEK[]
  bool has_body = false;
};

struct ListEntry {
  std::string name;
  std::string delimiter;
  std::vector<std::string> flags;  // \HasNoChildren, \Trash, \Sent, ...
  bool HasFlag(std::string_view flag) const;
};

struct AppendUid {
  uint64_t uidvalidity = 0;
  uint64_t uid = 0;
};

// The COPYUID response code (RFC 4315) of a COPY or MOVE: the UID sets as
// the server wrote them, in matching order. Empty when the server sent none
// (no UIDPLUS, or no message matched the set).
struct CopyUid {
  uint64_t uidvalidity = 0;  // of the destination mailbox
  std::string source;        // e.g. "4:5"
  std::string dest;          // e.g. "17:18"
};

// Entry name -> value; std::nullopt for NIL (no such entry).
using MetadataMap = std::map<std::string, std::optional<std::string>>;

// Builds command text, choosing quoted strings or literals.
class CommandBuilder {
 public:
  explicit CommandBuilder(bool literal_plus) : literal_plus_(literal_plus) {}
  CommandBuilder& Raw(std::string_view text);
  // An astring: quoted when possible, else a literal.
  CommandBuilder& String(std::string_view s);
  // Always a literal (message bodies).
  CommandBuilder& Literal(std::string_view bytes);
  // Chunks: each chunk after the first is sent after a "+" continuation.
  // With LITERAL+ there is one chunk.
  std::vector<std::string> Finish();

 private:
  bool literal_plus_;
  std::vector<std::string> chunks_ = {""};
};

class ImapClient {
 public:
  using Done = std::function<void(const CommandResult&)>;
  // Returns true if it consumed the response.
  using UntaggedHandler = std::function<bool(const ImapResponse&)>;

  enum class State { kIdle, kConnecting, kGreeting, kReady, kClosed };

  ImapClient(event_base* base, ImapClientOptions options);
  ~ImapClient();
  ImapClient(const ImapClient&) = delete;
  ImapClient& operator=(const ImapClient&) = delete;

  // Connects, reads the greeting and, unless the greeting listed them, the
  // capabilities. `done` runs once.
  void Connect(std::function<void(const Status&)> done);

  // Called once when the connection ends for any reason after Connect
  // succeeded (server BYE, error, time-out, LOGOUT), after every command
  // got its answer.
  void set_on_close(std::function<void(const Status&)> on_close) {
    on_close_ = std::move(on_close);
  }

  // --- Generic commands ----------------------------------------------------
  // `chunks` from CommandBuilder (without the tag). REQUIRES: Connect done.
  void Command(std::vector<std::string> chunks, Done done, UntaggedHandler untagged = nullptr);
  void Command(std::string_view text, Done done, UntaggedHandler untagged = nullptr);

  // --- Typed commands -------------------------------------------------------
  // LOGIN `user` `password`; the log shows "LOGIN <user> <password>".
  void Login(const std::string& user, const std::string& password, Done done);
  // LOGIN as user*master (Dovecot master-user login).
  void LoginAsMaster(const std::string& user, const std::string& master_user,
                     const std::string& master_password, Done done);
  void Capability(Done done);
  // SELECT or EXAMINE, with (CONDSTORE) when `condstore`.
  void Select(const std::string& mailbox, bool read_only, bool condstore,
              std::function<void(const CommandResult&, const MailboxInfo&)> done);
  // UID FETCH `uid_set` (`items`), e.g. items "(FLAGS INTERNALDATE
  // RFC822.SIZE X-GUID BODY.PEEK[])". `on_message` runs per message.
  void UidFetch(const std::string& uid_set, const std::string& items,
                std::function<void(FetchedMessage&&)> on_message, Done done);
  // UID STORE `uid_set` `action` (`flags`), e.g. action "+FLAGS.SILENT".
  void UidStore(const std::string& uid_set, const std::string& action, const std::string& flags,
                Done done);
  void UidMove(const std::string& uid_set, const std::string& mailbox, Done done);
  // The same, reporting the new UIDs: Dovecot sends COPYUID for MOVE in an
  // untagged OK before the EXPUNGEs (RFC 6851 3.3); other servers may put
  // it in the tagged OK. Both are looked at.
  void UidMoveWithUids(const std::string& uid_set, const std::string& mailbox,
                       std::function<void(const CommandResult&, const CopyUid&)> done);
  void UidExpunge(const std::string& uid_set, Done done);
  // APPEND with flags like "(\\Seen)" (or ""), an INTERNALDATE string (or
  // ""), and the message as a literal. APPENDUID when the server has UIDPLUS.
  void Append(const std::string& mailbox, const std::string& flags, const std::string& internaldate,
              const std::string& message,
              std::function<void(const CommandResult&, const AppendUid&)> done);
  // LIST "" "*" with special-use attributes (RETURN (SPECIAL-USE) when the
  // server has SPECIAL-USE and LIST-EXTENDED).
  void List(std::function<void(const CommandResult&, std::vector<ListEntry>&&)> done);
  // GETMETADATA [(DEPTH infinity)] mailbox (entries...).
  void GetMetadata(const std::string& mailbox, const std::vector<std::string>& entries,
                   bool depth_infinity,
                   std::function<void(const CommandResult&, MetadataMap&&)> done);
  // SETMETADATA mailbox (entry value ...); nullopt values delete (NIL).
  void SetMetadata(const std::string& mailbox, const MetadataMap& values, Done done);
  void Noop(Done done);
  // IDLE: `on_event` gets untagged responses while idling; call IdleDone()
  // to end it, then `done` runs.
  void Idle(std::function<void(const ImapResponse&)> on_event, Done done);
  void IdleDone();
  void Logout(Done done);

  // Fails every command and closes the connection (no on_close call).
  void Close(const Status& why);

  State state() const { return state_; }
  bool connected() const { return state_ == State::kReady; }
  bool HasCapability(const std::string& cap) const;
  const std::set<std::string>& capabilities() const { return caps_; }
  const MailboxInfo& mailbox() const { return mailbox_; }
  const std::string& log_user() const { return options_.log_user; }
  size_t in_flight() const { return in_flight_.size(); }
  size_t pending() const { return pending_.size(); }

 private:
  struct Cmd {
    std::string tag;
    std::vector<std::string> chunks;
    size_t next_chunk = 0;  // chunks sent so far
    std::string log_text;   // what the log may show
    Done done;
    UntaggedHandler untagged;
    bool idle = false;
  };

  static void ReadCb(bufferevent* bev, void* arg);
  static void WriteCb(bufferevent* bev, void* arg);
  static void EventCb(bufferevent* bev, short what, void* arg);
  static void ConnectTimeoutCb(evutil_socket_t, short, void* arg);

  void Enqueue(std::unique_ptr<Cmd> cmd);
  bool CanSend() const;
  void SendPending();
  void SendChunk(Cmd* cmd);
  // Returns false if `this` was destroyed by a callback.
  bool Dispatch(ImapResponse&& r);
  bool HandleTagged(ImapResponse&& r);
  void HandleUntaggedDefault(const ImapResponse& r);
  void UpdateCapabilities(const std::vector<ImapValue>& values, size_t from);
  void ArmTimeout();
  void Fail(const Status& why, bool notify_close);
  void FinishConnect(const Status& s);

  event_base* base_;
  ImapClientOptions options_;
  State state_ = State::kIdle;
  BuffereventPtr bev_;
  EventPtr connect_timer_;
  ImapParser parser_;
  std::deque<std::unique_ptr<Cmd>> pending_;
  std::deque<std::unique_ptr<Cmd>> in_flight_;
  // Set while a command waits for "+" (sync literal or IDLE).
  Cmd* awaiting_continuation_ = nullptr;
  Cmd* idling_ = nullptr;
  std::function<void(const ImapResponse&)> idle_handler_;
  std::set<std::string> caps_;
  MailboxInfo mailbox_;
  uint64_t next_tag_ = 1;
  std::function<void(const Status&)> connect_done_;
  std::function<void(const Status&)> on_close_;
  bool got_bye_ = false;
  bool logging_out_ = false;
  bool idle_done_requested_ = false;
  // A failure found inside Connect(), answered from the loop.
  Status pending_connect_error_;
  // Expires when the client is destroyed (isync's imap_ref/imap_deref).
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace mobilesync::agent::imap

#endif  // MOBILESYNC_SYNC_AGENT_IMAP_IMAP_CLIENT_H_
