// SessionCodec: translates one sync session between the engine's frames
// (engine/types.h: what the sync logic says) and the wire protocol's frames
// (src/wire, docs/protocol.md: what travels). Sans-I/O: the driver
// (sync_driver.h) sends what Encode returns and feeds what Decode returns to
// the engine.
//
// Where the two differ, the codec bridges:
//  * ids: the engine's remote ids are integers, the wire's are opaque text.
//    This agent accepts decimal ids only (what mobilesync-server assigns);
//    any other id fails the session with a clear error.
//  * sequence numbers: the engine tags its actions; the wire numbers them
//    1, 2, 3... in the order they are first sent. An engine re-send (its
//    time-out) is not sent again: over TCP a frame is never lost while the
//    connection lives, and the wire checker would refuse a second SWAP or
//    LIST_REQUEST. The session's own time-out still fails it.
//  * the list is paged on the wire (4096 entries a page) and whole in the
//    engine: pages are collected, then handed over as one kList.
//  * a fetched body carries no match key on the wire: it comes from the
//    list entry of the same id.
//  * commit: the engine's kCommit is END_SESSION{OK}; the server's reply
//    names the new generation, handed back as kCommitAck.
//  * a permanent NACK is an ack with outcome kRejected; a temporary one
//    means "stop, keep everything for the next session" (Decode reports it).
#ifndef MOBILESYNC_SYNC_AGENT_SESSION_CODEC_H_
#define MOBILESYNC_SYNC_AGENT_SESSION_CODEC_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "sync_agent/engine/types.h"
#include "wire/frame.h"

namespace mobilesync::agent {

// "17" <-> 17. False for anything but canonical decimal in 1..2^64-1.
bool ParseDecimalRemoteId(const std::string& text, engine::RemoteId* out);

class SessionCodec {
 public:
  struct Decoded {
    std::vector<engine::Frame> frames;  // for the engine, in order
    std::vector<wire::Frame> replies;   // to send at once (next list page)
    bool server_kind_update = false;    // BEGIN_SESSION_REPLY said UPDATE
    // BEGIN_SESSION_REPLY: the server's pending actions (empty: not told).
    std::optional<uint32_t> server_pending;
    bool ended = false;                         // the server's END_SESSION arrived
    engine::SyncGeneration end_generation = 0;  // ... with this generation
    bool temporary_failure = false;             // a temporary NACK: abort
    std::string detail;                         // for the log (nack/error detail)
  };

  SessionCodec(uint32_t session_id, std::string user);

  uint32_t session_id() const { return session_id_; }

  // True when Encode needs the local message's bytes for `f` (an INSERT or
  // FILED_AS_SENT action the first time it is sent).
  bool NeedsBody(const engine::Frame& f) const;

  // The wire frames for engine frame `f` (none for a re-send).
  [[nodiscard]] Status Encode(const engine::Frame& f, std::string body,
                              std::vector<wire::Frame>* out);
  // END_SESSION from the agent: OK after an update sync's last op, or an
  // abort (`no_change`: the abort of a session neither side had anything
  // to do in). The reply arrives as Decoded::ended.
  wire::Frame EndSession(bool ok, const std::string& detail = {}, bool no_change = false);

  // Translates a frame of this session from the server. A Status that is
  // not OK means the session cannot go on (protocol error, bad id, ERROR).
  [[nodiscard]] Status Decode(wire::Frame&& f, Decoded* out);

  // The body that came with remote message `id` (fetched or sent by the
  // server), moved out; empty if none.
  std::string TakeBody(engine::RemoteId id);
  bool HasBody(engine::RemoteId id) const { return bodies_.count(id) != 0; }

  uint64_t actions_sent() const { return next_seq_ - 1; }
  uint64_t actions_received() const { return server_actions_; }

 private:
  [[nodiscard]] Status EncodeAction(const engine::Frame& f, std::string body,
                                    std::vector<wire::Frame>* out);
  [[nodiscard]] Status DecodeList(const wire::pb::List& list, Decoded* out);

  uint32_t session_id_;
  std::string user_;
  bool begun_ = false;
  bool list_requested_ = false;
  bool swapped_ = false;
  bool commit_sent_ = false;
  bool no_change_sent_ = false;  // our END_SESSION was a no-change end
  bool end_sent_ = false;

  uint64_t next_seq_ = 1;                    // agent -> server
  std::map<uint64_t, uint64_t> seq_of_tag_;  // engine tag -> wire seq
  std::map<uint64_t, uint64_t> tag_of_seq_;
  uint32_t next_request_ = 1;  // FETCH request ids
  std::set<engine::RemoteId> fetching_;

  std::vector<engine::RemoteMessage> list_;  // pages collected so far
  std::vector<engine::RemoteId> destroyed_;  // LIST.destroyed_ids so far
  std::map<engine::RemoteId, engine::MessageMeta> listed_;
  std::map<engine::RemoteId, std::string> bodies_;
  uint64_t server_actions_ = 0;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_SESSION_CODEC_H_
