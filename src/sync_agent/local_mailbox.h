// LocalMailbox: the agent's side of one user's sync session in Dovecot, over
// an IMAP connection logged in as user*master (docs/attributes.md).
//
// It turns the user's durable state into the engine's snapshot (the plugin's
// action list, the id map, the generation, the INBOX and Trash message
// lists) and carries out the engine's local ops (engine/sync_session.h
// OpKind): append, set state (which may move a message between INBOX and
// Trash and so change its LocalId), destroy, submit and file in Sent, and
// the durable writes (mapping, action-entry delete, generation).
//
// Ops must be carried out one after the other, in the order the engine
// returned them: each `done` runs before the next Apply is called. Every op
// is idempotent (a crash re-runs it): appending what is already there is
// the engine's concern (match keys), destroying a missing uid is success,
// deleting a missing attribute is success, a composed message is submitted
// once per remote id (`submitted/<remote id>` attribute written as soon as
// the MTA accepted it).
#ifndef MOBILESYNC_SYNC_AGENT_LOCAL_MAILBOX_H_
#define MOBILESYNC_SYNC_AGENT_LOCAL_MAILBOX_H_

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "sync_agent/engine/sync_session.h"
#include "sync_agent/imap/imap_client.h"
#include "sync_agent/mail_submitter.h"
#include "sync_agent/quick_token.h"

namespace mobilesync::agent {

struct LocalMailboxOptions {
  // Used when no mailbox has the special-use flag (LIST RETURN (SPECIAL-USE)).
  std::string trash_mailbox = "Trash";
  std::string sent_mailbox = "Sent";
  // Messages larger than this are listed but never copied to the remote side.
  uint64_t max_message_bytes = 64u << 20;
  // Where the listing cache keeps what INBOX and Trash held at the last
  // session (listing_cache.h), and the id map cache the id map
  // (id_map_cache.h); "" for none: every session lists every message and
  // reads the whole id map.
  std::string listing_dir;
};

// What LoadSnapshot found besides the engine's snapshot.
struct SnapshotInfo {
  std::string trash_box;  // the names actually used
  std::string sent_box;
  size_t action_entries = 0;      // entries read from the action list
  size_t corrupt_entries = 0;     // unparseable (kept; force an initial sync)
  bool resync_requested = false;  // a `resync` entry or a corrupt one:
                                  // the snapshot's generation is 0
};

// What LoadQuick found: whether a session may skip loading the snapshot.
struct QuickCheck {
  // No action entry, and the mailbox is as the last session (which ended
  // OK without changing it, at `generation`) found it at its start.
  bool unchanged = false;
  engine::SyncGeneration generation = 0;
  uint32_t window_size = 0;  // that session's N
  std::string why;           // when not unchanged (for the debug log)
  // When unchanged: a quick token for the next check (QuickToken), or ""
  // when none could be made (no CONDSTORE, or the mailbox moved while it
  // was read). from_token: the check took the given token's word and read
  // no attribute.
  std::string token;
  bool from_token = false;
};

class LocalMailbox {
 public:
  using LoadDone = std::function<void(const Status&, engine::AgentSnapshot, SnapshotInfo)>;
  using ApplyDone = std::function<void(const Status&, const engine::LocalId& new_id)>;
  using BodyDone = std::function<void(const Status&, std::string body)>;

  // REQUIRES: `client` is logged in as the user and outlives this object;
  // `submitter` may be null (then kSubmitMessage fails with
  // FailedPrecondition and the DELIVER stays queued on the server).
  LocalMailbox(imap::ImapClient* client, std::string user, LocalMailboxOptions options,
               MailSubmitter* submitter);
  ~LocalMailbox();
  LocalMailbox(const LocalMailbox&) = delete;
  LocalMailbox& operator=(const LocalMailbox&) = delete;

  // Reads everything the engine needs. Action entries become engine actions
  // with seq = 1, 2, ... in key order (DeleteActionEntry takes that seq).
  // trash/restore entries name the message's new location; when the id map
  // still names the old one (src_*), the mapping is moved to the new key
  // (persisted before `done`). A `resync` or corrupt entry deletes the
  // generation attribute (persisted) and yields generation 0.
  // It also reads the mailbox fingerprint (INBOX's and Trash's STATUS)
  // first; the quick entry (below), if there is one, is deleted by the
  // session's first ApplyDurable.
  void LoadSnapshot(LoadDone done);

  // The quick check of a session with nothing to do, without reading the
  // id map or listing the mailbox: the generation, the action list (none)
  // and the quick entry that the last session wrote with its generation
  // (only when it ended OK without changing the mailbox), whose fingerprint
  // must equal the mailbox's now. A failed command is an error; anything
  // else that rules the quick path out is `why`.
  // With a `token` (QuickToken) that matches the mailbox's STATUS now, no
  // attribute is read at all. Run again at the end of a session that wrote
  // a quick entry, it makes the token for the next session.
  using QuickDone = std::function<void(const Status&, QuickCheck)>;
  void LoadQuick(const std::string& token, QuickDone done);

  // Keeps the id map as this session leaves it in the id map cache
  // (id_map_cache.h; with a listing_dir), or removes the cached one when a
  // map write's outcome is unknown. Called once the session's writes ended.
  void SaveIdMapCache();

  // The session wrote a quick entry with its generation (ApplyDurable) and
  // nothing deleted it since.
  bool wrote_quick_entry() const;

  // The session's remote window N (from the server): the quick entry
  // records it, and a later quick check needs the same N.
  void set_remote_window(uint32_t n);

  // The RFC 5322 bytes of a local message (for an INSERT or FILED_AS_SENT
  // sent to the server).
  void FetchBody(const engine::LocalId& id, BodyDone done);

  // The bytes of several messages of one mailbox (same mailbox and
  // UIDVALIDITY) in one UID FETCH. Messages that are gone are missing from
  // the result. Bodies the snapshot fetched ahead (the messages new in
  // INBOX since the listing cache's last listing, within a bound) are
  // handed out once, without a SELECT or a round trip.
  using BodiesDone = std::function<void(const Status&, std::map<engine::LocalId, std::string>)>;
  void FetchBodies(const std::vector<engine::LocalId>& ids, BodiesDone done);

  // The size the last snapshot listed for `id` (0: not listed).
  uint64_t ListedSize(const engine::LocalId& id) const;

  // Carries out one engine op that touches Dovecot: kAppendLocal,
  // kSetLocalState, kDestroyLocal, kSubmitMessage, kFileInSent,
  // kPutMapping, kRemoveMapping, kDeleteActionEntry, kSetGeneration.
  // `body`: the message bytes for kAppendLocal, kSubmitMessage, kFileInSent.
  // `new_id`: for kAppendLocal the appended message; for kSetLocalState the
  // message's id afterwards (differs from op.local when it moved between
  // INBOX and Trash); else empty.
  // kSetGeneration with a generation != 0 stores `v1 gen=<g> server=<server_name>`,
  // and the quick entry when no mailbox op ran since LoadSnapshot (else
  // deletes it).
  void Apply(const engine::Op& op, const std::string& body, ApplyDone done);

  // Several durable ops (kPutMapping, kRemoveMapping, kDeleteActionEntry,
  // kSetGeneration), in order, in as few SETMETADATA commands as Dovecot's
  // 64 KiB command line allows (one for a few hundred entries): each is
  // written whole or not at all, and a crash leaves a prefix of the ops
  // written. REQUIRES: ops.size() <= kMaxDurableBatch.
  static constexpr size_t kMaxDurableBatch = 1024;
  void ApplyDurable(const std::vector<engine::Op>& ops, ApplyDone done);

  void set_server_name(std::string name) { server_name_ = std::move(name); }
  const SnapshotInfo& info() const { return info_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string server_name_;
  SnapshotInfo info_;
};

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_LOCAL_MAILBOX_H_
