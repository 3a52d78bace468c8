// The agent's local control socket (docs/control-protocol.md).
//
// A UNIX stream socket, mode 0660, group `control_group` when set. Every
// peer's credentials (SO_PEERCRED) are checked at accept: root, the agent's
// own user, or a member of control_group; anyone else is logged and closed.
//
// Two kinds of client share the socket:
//  * the Dovecot plugin writes "poke USER\n" (a local change) and
//    "sync USER\n" (a trigger message), one or more lines, then closes. It
//    never reads: these lines get no reply.
//  * mobilesyncctl starts with "hello 1\n"; from then on every line is a
//    request with exactly one reply, in order:
//      +OK\n<body lines, a leading '.' doubled>\n.\n     or     -ERR <text>\n
// Requests are handled one at a time per connection (a "sync USER --wait"
// holds the connection's later requests until it is answered).
#ifndef MOBILESYNC_SYNC_AGENT_CONTROL_SERVER_H_
#define MOBILESYNC_SYNC_AGENT_CONTROL_SERVER_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sync_agent/event_ptrs.h"

namespace mobilesync::agent {

struct ControlRequest {
  std::string verb;               // lower-case
  std::vector<std::string> args;  // without the options below
  bool json = false;              // --json
  bool wait = false;              // --wait
  bool interactive = false;       // false: a plugin line (no reply)
  uid_t peer_uid = 0;
};

struct ControlReply {
  Status status;     // non-OK: "-ERR <message>"
  std::string body;  // lines, '\n'-separated
  static ControlReply Ok(std::string body = {}) { return {Status::OK(), std::move(body)}; }
  static ControlReply Error(Status s) { return {std::move(s), {}}; }
};

class ControlServer {
 public:
  static constexpr size_t kMaxLineBytes = 64 * 1024;
  using Respond = std::function<void(ControlReply)>;
  // `respond` may be called later (once); it is a no-op if the client went
  // away. For plugin lines it is still called, and discards the reply.
  using Handler = std::function<void(const ControlRequest&, Respond respond)>;

  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `path` (replacing a stale socket, refusing if an agent answers
  // there), mode 0660, group `group` if not empty.
  [[nodiscard]] static Status Create(event_base* base, const std::string& path,
                                     const std::string& group, Handler handler,
                                     std::unique_ptr<ControlServer>* out);

  size_t connections() const { return conns_.size(); }

 private:
  struct Conn;
  ControlServer() = default;
  static void AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  static void ReadCb(bufferevent* bev, void* arg);
  static void WriteCb(bufferevent* bev, void* arg);
  static void EventCb(bufferevent* bev, short what, void* arg);
  bool PeerAllowed(int fd, uid_t* uid, pid_t* pid, std::string* why) const;
  void ProcessLines(Conn* c);
  void HandleLine(Conn* c, const std::string& line);
  void Reply(Conn* c, const ControlReply& r);
  void MaybeClose(Conn* c);
  void Destroy(Conn* c);

  event_base* base_ = nullptr;
  std::string path_;
  gid_t group_gid_ = static_cast<gid_t>(-1);
  Handler handler_;
  ListenerPtr listener_;
  std::map<Conn*, std::unique_ptr<Conn>> conns_;
};

// Splits a request line into words (single spaces; no quoting: user names
// hold no spaces).
std::vector<std::string> SplitWords(const std::string& line);

// Parses one request line (without its newline) into verb (lower-cased),
// args and the --json/--wait options; false for a line of no words.
// Leaves interactive and peer_uid alone. Pure: fuzzed by
// tests/fuzz/control_line_fuzzer.cc.
bool ParseControlLine(const std::string& line, ControlRequest* req);

// The bytes of a reply on the socket: "-ERR <message>\n" (line breaks in
// the message become spaces) or "+OK\n<body, a leading '.' doubled>\n.\n".
std::string FormatControlReply(const ControlReply& r);

// Minimal JSON string escaping for replies.
std::string JsonString(const std::string& s);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_CONTROL_SERVER_H_
