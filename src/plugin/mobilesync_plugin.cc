/* mobilesync Dovecot plugin (lib20_mobilesync_plugin.so).
 *
 * For every mail user with mobilesync_enabled = yes (plugin setting,
 * overridable per user from userdb) this module records each change the
 * agent must replay on the remote side as one server attribute (mailbox "")
 * per action, then pokes the agent over its UNIX socket:
 *
 *   /private/vendor/vendor.mobilesync/action/<ts_us>-<pid>-<counter>
 *       = "v1 kind=insert box=INBOX uidvalidity=.. uid=.. guid=.. ts=.."
 *
 * (docs/attributes.md has every key and value). The attribute is the durable
 * record; the poke is only a hint, so a dead or slow agent never delays or
 * fails delivery or IMAP.
 *
 * Event model (notify plugin): a change is captured when it happens (its
 * sortable key is assigned then, so causally later changes in other
 * processes sort later), and written in its own EXTERNAL|NO_NOTIFY
 * transaction from the commit callback, where saved UIDs are known. A move is
 * a copy in the destination transaction followed by an expunge in the
 * source transaction; the copy tells the expunge (per process) that it was
 * a move, not a destroy.
 *
 * Skipped: users without the setting, autocreated (LMTP raw) users, master
 * user sessions (the agent itself), dsync, and SYNC or NO_NOTIFY
 * transactions.
 *
 * The C/C++ boundary: Dovecot's headers are included inside extern "C"; the
 * entry points are the only exported symbols; every callback Dovecot calls
 * catches all exceptions (none may unwind through Dovecot's C frames); the
 * pool-allocated contexts are trivially destructible and hold their C++
 * state behind pointers deleted explicitly. */
#include "mobilesync-config.h"

extern "C" {
#include "lib.h"
#include "array.h"
#include "ioloop.h"
#include "mail-namespace.h"
#include "mail-storage-hooks.h"
#include "mail-storage-private.h"
#include "mail-storage.h"
#include "mail-user.h"
#include "module-context.h"
#include "notify-plugin.h"
#include "seq-range-array.h"
}

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "plugin/action_record.h"
#include "plugin/mobilesync_plugin.h"
#include "plugin/plugin_settings.h"

#ifndef MOBILESYNC_ABI_VERSION
/* Only the wrong-ABI test build overrides this. */
#define MOBILESYNC_ABI_VERSION DOVECOT_ABI_VERSION
#endif

/* Pokes are batched for this long: a burst of IMAP changes (a STORE over a
   thousand messages) makes one poke. Short, because push latency counts. */
#define MOBILESYNC_POKE_DELAY_MSECS 20
/* Bounds the per-process move bookkeeping (a move's copy and expunge come
   back to back, so only a runaway could fill it). */
#define MOBILESYNC_MAX_TRACKED_MOVES 10000

#define MOBILESYNC_USER_CONTEXT(obj) \
  static_cast<struct mobilesync_user*>(MODULE_CONTEXT(obj, mobilesync_user_module))

namespace {

using mobilesync::plugin::ActionKind;
using mobilesync::plugin::ActionRecord;

enum class BoxRole { kOther, kInbox, kTrash, kSent };

/* Where a message went when it left INBOX or Trash by copy or move. */
struct MoveTarget {
  bool moving = false;         // MOVE: the expunge that follows is not a destroy
  bool resolved = false;       // destination UID known (after its commit)
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  std::string guid;
};

/* The C++ side of a user's state. */
struct UserState {
  mobilesync::plugin::PluginSettings settings;
  bool roles_resolved = false;
  std::string trash_name;
  std::string sent_name;
  /* Keyed by (source role, source UID). */
  std::map<std::pair<BoxRole, uint32_t>, MoveTarget> moves;
  bool poke_pending = false;
  bool sync_pending = false;
  struct timeout* to = nullptr;
};

/* A change captured in a transaction, written at its commit. */
struct PendingAction {
  ActionRecord rec;
  std::string key_id;
  /* Index among this transaction's saves and copies (its UID is the
     save_index-th of changes->saved_uids), or -1 when the UID is known. */
  int save_index = -1;
  /* A copy out of INBOX/Trash that is not (yet) an action: at commit the
     destination UID is stored in UserState::moves for the expunge. */
  bool copy_only = false;
  std::pair<BoxRole, uint32_t> copy_source;
  /* The GUID of a mail being saved can't be read before commit (maildir
     asserts on it): it is looked up by UID after the commit. */
  bool guid_deferred = false;
};

struct TxnState {
  std::vector<PendingAction> actions;
  int saves = 0;
};

}  // namespace

struct mobilesync_user {
  union mail_user_module_context module_ctx;
  UserState* state;
};
static_assert(std::is_trivially_destructible<mobilesync_user>::value,
              "pool memory runs no destructors");

struct mobilesync_mail_txn_context {
  struct mail_user* user;
  /* Still open at commit (the caller frees it after the transaction). */
  struct mailbox* box;
  BoxRole role;
  uint32_t uidvalidity;
  TxnState* state;
};

static MODULE_CONTEXT_DEFINE_INIT(mobilesync_user_module, &mail_user_module_register);

static struct notify_context* mobilesync_notify_ctx;
/* Per process: the action key counter and the last key time (keys of one
   process never go backwards, even if the clock does). */
static uint32_t mobilesync_key_counter;
static uint64_t mobilesync_last_ts_us;
static bool mobilesync_agent_warned;

/* ---- helpers ----------------------------------------------------------- */

static uint64_t mobilesync_now_us() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000u +
                 static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  if (now <= mobilesync_last_ts_us) now = mobilesync_last_ts_us + 1;
  mobilesync_last_ts_us = now;
  return now;
}

static std::string mobilesync_next_key_id(uint64_t ts_us) {
  return mobilesync::plugin::FormatActionKeyId(ts_us, static_cast<uint32_t>(getpid()),
                                               ++mobilesync_key_counter);
}

/* The Trash and Sent mailboxes: the first with \Trash (\Sent) special-use
   in the INBOX namespace's mailbox settings, else the configured name.
   Namespaces don't exist yet at mail_user_created, hence lazily. */
static void mobilesync_resolve_roles(struct mail_user* user, UserState* st) {
  if (st->roles_resolved) return;
  st->roles_resolved = true;
  st->trash_name = st->settings.trash_mailbox;
  st->sent_name = st->settings.sent_mailbox;
  struct mail_namespace* ns = mail_namespace_find_inbox(user->namespaces);
  if (ns == nullptr || ns->set == nullptr || !array_is_created(&ns->set->mailboxes)) return;
  bool trash_found = false, sent_found = false;
  struct mailbox_settings* const* boxp;
  array_foreach(&ns->set->mailboxes, boxp) {
    const struct mailbox_settings* b = *boxp;
    if (b->special_use == nullptr) continue;
    std::string name = std::string(ns->prefix) + b->name;
    if (!trash_found && strstr(b->special_use, "\\Trash") != nullptr) {
      st->trash_name = name;
      trash_found = true;
    }
    if (!sent_found && strstr(b->special_use, "\\Sent") != nullptr) {
      st->sent_name = name;
      sent_found = true;
    }
  }
}

static BoxRole mobilesync_box_role(struct mailbox* box, UserState* st) {
  struct mail_user* user = mailbox_get_namespace(box)->user;
  mobilesync_resolve_roles(user, st);
  if (box->inbox_user) return BoxRole::kInbox;
  const char* vname = mailbox_get_vname(box);
  if (st->trash_name == vname) return BoxRole::kTrash;
  if (st->sent_name == vname) return BoxRole::kSent;
  return BoxRole::kOther;
}

static std::string mobilesync_mail_guid(struct mail* mail) {
  const char* guid = nullptr;
  /* A backend without GUIDs (mbox without the header) gives none: the
     record then carries an empty guid, which the format allows. */
  if (mail_get_special(mail, MAIL_FETCH_GUID, &guid) < 0 || guid == nullptr) return "";
  return guid;
}

static uint32_t mobilesync_box_uidvalidity(struct mailbox* box) {
  struct mailbox_status status;
  mailbox_get_open_status(box, STATUS_UIDVALIDITY, &status);
  return status.uidvalidity;
}

/* ---- poking the agent -------------------------------------------------- */

/* Sends `lines` to the agent socket without ever blocking: non-blocking
   connect (a UNIX socket connect fails with EAGAIN rather than wait when
   the backlog is full) and one non-blocking write. Returns false if the
   agent could not be reached; the action list is durable either way. */
static bool mobilesync_send_to_agent(struct mail_user* user, const std::string& path,
                                     const std::string& lines) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    if (!mobilesync_agent_warned) {
      e_warning(user->event, "mobilesync: agent socket path too long: %s", path.c_str());
      mobilesync_agent_warned = true;
    }
    return false;
  }
  memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0;
  int err = errno;
  if (ok) {
    ssize_t n = send(fd, lines.data(), lines.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    err = errno;
    /* A short write means a full socket buffer: the agent is not reading.
       It will find the actions at its next periodic sync. */
    ok = n == static_cast<ssize_t>(lines.size());
  }
  (void)close(fd);
  if (!ok) {
    if (!mobilesync_agent_warned) {
      /* Once per process: an agent that is down would otherwise flood the
         log with one line per delivery. */
      e_warning(user->event,
                "mobilesync: agent not reachable at %s (%s); changes stay queued in "
                "attributes until its next sync",
                path.c_str(), strerror(err));
      mobilesync_agent_warned = true;
    }
  } else {
    e_debug(user->event, "mobilesync: poked agent");
  }
  return ok;
}

static void mobilesync_poke_flush(struct mail_user* user) {
  struct mobilesync_user* muser = MOBILESYNC_USER_CONTEXT(user);
  if (muser == nullptr || muser->state == nullptr) return;
  UserState* st = muser->state;
  if (st->to != nullptr) timeout_remove(&st->to);
  if (!st->poke_pending && !st->sync_pending) return;
  /* One line per request: "poke <user>\n" (new actions are queued) and/or
     "sync <user>\n" (a trigger message asked for a sync). The user name is
     percent-encoded (docs/attributes.md, "Plugin poke"). */
  std::string encoded = mobilesync::plugin::PercentEncode(user->username);
  std::string lines;
  if (st->poke_pending) lines += "poke " + encoded + "\n";
  if (st->sync_pending) lines += "sync " + encoded + "\n";
  st->poke_pending = false;
  st->sync_pending = false;
  (void)mobilesync_send_to_agent(user, st->settings.agent_socket, lines);
}

static void mobilesync_poke_timeout(struct mail_user* user) {
  try {
    mobilesync_poke_flush(user);
  } catch (...) {
    e_error(user->event, "mobilesync: internal error while poking the agent");
  }
}

static void mobilesync_poke_later(struct mail_user* user, bool sync) {
  UserState* st = MOBILESYNC_USER_CONTEXT(user)->state;
  if (sync) {
    st->sync_pending = true;
  } else {
    st->poke_pending = true;
  }
  if (st->to != nullptr) return;
  if (current_ioloop == nullptr) {
    mobilesync_poke_flush(user);
    return;
  }
  st->to = timeout_add_short(MOBILESYNC_POKE_DELAY_MSECS, mobilesync_poke_timeout, user);
}

/* ---- writing the action list ------------------------------------------- */

/* Opens `vname` (INBOX for the attribute store) in an instance of our own,
   ignoring ACLs as doveadm does for server attributes. Returns nullptr after
   logging on failure. */
static struct mailbox* mobilesync_open_box(struct mail_user* user, const char* vname) {
  struct mail_namespace* ns = strcmp(vname, "INBOX") == 0
                                  ? mail_namespace_find_inbox(user->namespaces)
                                  : mail_namespace_find(user->namespaces, vname);
  if (ns == nullptr) {
    e_error(user->event, "mobilesync: no namespace for mailbox %s", vname);
    return nullptr;
  }
  struct mailbox* box = mailbox_alloc(
      ns->list, vname,
      static_cast<enum mailbox_flags>(MAILBOX_FLAG_IGNORE_ACLS | MAILBOX_FLAG_ATTRIBUTE_SESSION));
  if (mailbox_open(box) < 0) {
    e_error(user->event, "mobilesync: opening %s failed: %s", vname,
            mailbox_get_last_internal_error(box, nullptr));
    mailbox_free(&box);
  }
  return box;
}

/* Writes `entries` (key id, value) as server attributes in one transaction
   of its own, in `inbox` if given (an open INBOX instance of ours), else in
   an INBOX it opens. Returns false (after logging) if they could not be
   stored. */
static bool mobilesync_write_actions(
    struct mail_user* user, struct mailbox* inbox,
    const std::vector<std::pair<std::string, std::string>>& entries) {
  if (entries.empty()) return true;
  struct mailbox* own = nullptr;
  if (inbox == nullptr) inbox = own = mobilesync_open_box(user, "INBOX");
  if (inbox == nullptr) {
    e_error(user->event, "mobilesync: %zu actions lost", entries.size());
    return false;
  }
  /* EXTERNAL: not a user change; NO_NOTIFY: we never see our own writes. */
  struct mailbox_transaction_context* t = mailbox_transaction_begin(
      inbox,
      static_cast<enum mailbox_transaction_flags>(MAILBOX_TRANSACTION_FLAG_EXTERNAL |
                                                  MAILBOX_TRANSACTION_FLAG_NO_NOTIFY),
      "mobilesync actions");
  bool ok = true;
  for (const auto& e : entries) {
    std::string key = std::string(mobilesync::plugin::kDovecotServerPrefix) +
                      std::string(mobilesync::plugin::kVendorPrefix) +
                      std::string(mobilesync::plugin::kActionDir) + e.first;
    struct mail_attribute_value value;
    i_zero(&value);
    value.value = e.second.c_str();
    if (mailbox_attribute_set(t, MAIL_ATTRIBUTE_TYPE_PRIVATE, key.c_str(), &value) < 0) {
      ok = false;
      break;
    }
  }
  if (ok) {
    ok = mailbox_transaction_commit(&t) == 0;
  } else {
    mailbox_transaction_rollback(&t);
  }
  if (!ok) {
    e_error(user->event, "mobilesync: storing %zu actions failed: %s", entries.size(),
            mailbox_get_last_internal_error(inbox, nullptr));
  }
  if (own != nullptr) mailbox_free(&own);
  return ok;
}

static void mobilesync_record_now(struct mail_user* user, std::vector<ActionRecord> records) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (auto& r : records) {
    std::string value;
    mobilesync::Status s = mobilesync::plugin::FormatActionValue(r, &value);
    if (!s.ok()) {
      e_error(user->event, "mobilesync: BUG: %s", s.ToString().c_str());
      continue;
    }
    entries.emplace_back(mobilesync_next_key_id(r.ts_us), std::move(value));
  }
  if (mobilesync_write_actions(user, nullptr, entries)) mobilesync_poke_later(user, false);
}

static void mobilesync_record_resync(struct mail_user* user, const char* box,
                                     const char* reason) {
  ActionRecord r;
  r.kind = ActionKind::kResync;
  r.box = box;
  r.reason = reason;
  r.ts_us = mobilesync_now_us();
  e_debug(user->event, "mobilesync: %s of %s: full resync requested", reason, box);
  mobilesync_record_now(user, {r});
}

/* Looks up the GUIDs of freshly saved mails by UID in `box`, an instance
   of our own (the saving transaction is gone by now), and the UIDVALIDITY
   if still unknown: a mailbox created by the transaction that just
   committed (the first delivery) has it only in a fresh view, or after a
   sync. A GUID that can't be found stays empty: the record is still useful
   without it. */
static void mobilesync_fill_deferred(struct mailbox* box, std::vector<PendingAction*>* actions,
                                     uint32_t* uidvalidity) {
  if (*uidvalidity == 0) *uidvalidity = mobilesync_box_uidvalidity(box);
  if (*uidvalidity == 0 && mailbox_sync(box, static_cast<enum mailbox_sync_flags>(0)) == 0) {
    *uidvalidity = mobilesync_box_uidvalidity(box);
  }
  if (actions->empty()) return;
  struct mailbox_transaction_context* t =
      mailbox_transaction_begin(box, MAILBOX_TRANSACTION_FLAG_NO_NOTIFY, "mobilesync guid lookup");
  struct mail* mail = mail_alloc(t, MAIL_FETCH_GUID, nullptr);
  for (PendingAction* a : *actions) {
    if (mail_set_uid(mail, a->rec.uid)) a->rec.guid = mobilesync_mail_guid(mail);
  }
  mail_free(&mail);
  (void)mailbox_transaction_commit(&t);  // read-only: nothing to fail
}

/* ---- notify callbacks -------------------------------------------------- */

static struct mobilesync_mail_txn_context* mobilesync_txn(void* txn) {
  return static_cast<struct mobilesync_mail_txn_context*>(txn);
}

static void* mobilesync_mail_transaction_begin(struct mailbox_transaction_context* t) {
  try {
    struct mailbox* box = mailbox_transaction_get_mailbox(t);
    struct mail_user* user = mailbox_get_namespace(box)->user;
    struct mobilesync_user* muser = MOBILESYNC_USER_CONTEXT(user);
    if (muser == nullptr) return nullptr;
    /* dsync and the like replay changes that came from elsewhere. */
    if ((t->flags & MAILBOX_TRANSACTION_FLAG_SYNC) != 0 || user->dsyncing) return nullptr;
    BoxRole role = mobilesync_box_role(box, muser->state);
    if (role == BoxRole::kOther) return nullptr;
    /* Saved messages must get their UIDs at commit. Maildir otherwise skips
       assigning them when another process holds the uidlist lock (LMTP does
       not ask for UIDs), and the action would have no UID. IMAP APPEND
       always sets this flag; this makes deliveries wait for the lock too. */
    t->flags = static_cast<enum mailbox_transaction_flags>(
        t->flags | MAILBOX_TRANSACTION_FLAG_ASSIGN_UIDS);
    /* Malloc'd, not pool: the transaction is freed before the commit
       callback runs. */
    auto* ctx = i_new(struct mobilesync_mail_txn_context, 1);
    ctx->user = user;
    ctx->box = box;
    ctx->role = role;
    ctx->uidvalidity = mobilesync_box_uidvalidity(box);
    ctx->state = new TxnState();
    return ctx;
  } catch (const std::bad_alloc&) {
    i_fatal_status(FATAL_OUTOFMEM, "mobilesync: out of memory");
  } catch (...) {
    i_error("mobilesync: internal error at transaction begin; changes not recorded");
  }
  return nullptr;
}

static void mobilesync_txn_free(struct mobilesync_mail_txn_context* ctx) {
  delete ctx->state;
  i_free(ctx);
}

static PendingAction mobilesync_new_action(struct mobilesync_mail_txn_context* ctx,
                                           ActionKind kind, struct mailbox* box) {
  PendingAction a;
  a.rec.kind = kind;
  a.rec.box = mailbox_get_vname(box);
  a.rec.uidvalidity = ctx->uidvalidity;
  a.rec.ts_us = mobilesync_now_us();
  a.key_id = mobilesync_next_key_id(a.rec.ts_us);
  return a;
}

static void mobilesync_mail_save(void* txn, struct mail* mail) {
  struct mobilesync_mail_txn_context* ctx = mobilesync_txn(txn);
  if (ctx == nullptr) return;
  try {
    int index = ctx->state->saves++;
    if (ctx->role != BoxRole::kInbox && ctx->role != BoxRole::kSent) return;
    PendingAction a = mobilesync_new_action(
        ctx, ctx->role == BoxRole::kInbox ? ActionKind::kInsert : ActionKind::kSent, mail->box);
    if (mail->saving) {
      a.guid_deferred = true;
    } else {
      a.rec.guid = mobilesync_mail_guid(mail);
    }
    a.rec.uid = mail->uid;
    if (a.rec.uid == 0) a.save_index = index;
    ctx->state->actions.push_back(std::move(a));
  } catch (...) {
    e_error(ctx->user->event, "mobilesync: internal error recording a save");
  }
}

static void mobilesync_mail_copy(void* txn, struct mail* src, struct mail* dst) {
  struct mobilesync_mail_txn_context* ctx = mobilesync_txn(txn);
  if (ctx == nullptr) return;
  try {
    int index = ctx->state->saves++;
    UserState* st = MOBILESYNC_USER_CONTEXT(ctx->user)->state;
    /* A source in another user's storage is a delivery (LMTP copies the
       first recipient's mail to the others): an insert. */
    bool same_user = mailbox_get_namespace(src->box)->user == ctx->user;
    BoxRole src_role = same_user ? mobilesync_box_role(src->box, st) : BoxRole::kOther;
    struct mail_save_context* save_ctx = dst->transaction->save_ctx;
    bool moving = save_ctx != nullptr && save_ctx->moving;

    ActionKind kind;
    bool tracked_move = false;
    if (ctx->role == BoxRole::kTrash && src_role == BoxRole::kInbox) {
      kind = ActionKind::kTrash;
      tracked_move = true;
    } else if (ctx->role == BoxRole::kInbox && src_role == BoxRole::kTrash) {
      kind = ActionKind::kRestore;
      tracked_move = true;
    } else if (ctx->role == BoxRole::kInbox) {
      kind = ActionKind::kInsert;
    } else if (ctx->role == BoxRole::kSent) {
      kind = ActionKind::kSent;
    } else {
      return;  // e.g. Sent or Drafts copied to Trash: not in the virtual mailbox
    }
    PendingAction a = mobilesync_new_action(ctx, kind, dst->box);
    if (src->saving) {
      a.guid_deferred = true;  // see mobilesync_mail_save
    } else {
      a.rec.guid = mobilesync_mail_guid(src);
    }
    a.rec.uid = dst->uid;
    if (a.rec.uid == 0) a.save_index = index;
    if (tracked_move) {
      a.rec.src_box = mailbox_get_vname(src->box);
      a.rec.src_uidvalidity = mobilesync_box_uidvalidity(src->box);
      a.rec.src_uid = src->uid;
      a.copy_source = {src_role, src->uid};
      if (st->moves.size() >= MOBILESYNC_MAX_TRACKED_MOVES) st->moves.clear();
      MoveTarget& m = st->moves[a.copy_source];
      m = MoveTarget();
      m.moving = moving;
      /* A plain COPY to Trash is not yet a move to Trash: the message is
         still in INBOX. It becomes one if the INBOX copy is expunged. */
      a.copy_only = !moving;
    }
    ctx->state->actions.push_back(std::move(a));
  } catch (...) {
    e_error(ctx->user->event, "mobilesync: internal error recording a copy");
  }
}

static void mobilesync_mail_expunge(void* txn, struct mail* mail) {
  struct mobilesync_mail_txn_context* ctx = mobilesync_txn(txn);
  if (ctx == nullptr) return;
  try {
    if (ctx->role != BoxRole::kInbox && ctx->role != BoxRole::kTrash) return;
    UserState* st = MOBILESYNC_USER_CONTEXT(ctx->user)->state;
    auto it = st->moves.find({ctx->role, mail->uid});
    if (it != st->moves.end() && it->second.moving) {
      st->moves.erase(it);  // the copy recorded the move
      return;
    }
    if (it != st->moves.end() && it->second.resolved) {
      /* COPY then EXPUNGE: now it is a move. */
      PendingAction a = mobilesync_new_action(
          ctx, ctx->role == BoxRole::kInbox ? ActionKind::kTrash : ActionKind::kRestore,
          mail->box);
      a.rec.box = ctx->role == BoxRole::kInbox ? st->trash_name : "INBOX";
      a.rec.uidvalidity = it->second.uidvalidity;
      a.rec.uid = it->second.uid;
      a.rec.guid = it->second.guid;
      a.rec.src_box = mailbox_get_vname(mail->box);
      a.rec.src_uidvalidity = ctx->uidvalidity;
      a.rec.src_uid = mail->uid;
      st->moves.erase(it);
      ctx->state->actions.push_back(std::move(a));
      return;
    }
    PendingAction a = mobilesync_new_action(ctx, ActionKind::kDestroy, mail->box);
    a.rec.uid = mail->uid;
    a.rec.guid = mobilesync_mail_guid(mail);
    ctx->state->actions.push_back(std::move(a));
  } catch (...) {
    e_error(ctx->user->event, "mobilesync: internal error recording an expunge");
  }
}

static void mobilesync_mail_update_flags(void* txn, struct mail* mail,
                                         enum mail_flags old_flags) {
  struct mobilesync_mail_txn_context* ctx = mobilesync_txn(txn);
  if (ctx == nullptr || ctx->role != BoxRole::kInbox || mail->uid == 0) return;
  try {
    enum mail_flags new_flags = mail_get_flags(mail);
    if (((old_flags ^ new_flags) & MAIL_SEEN) == 0) return;
    PendingAction a = mobilesync_new_action(
        ctx, (new_flags & MAIL_SEEN) != 0 ? ActionKind::kRead : ActionKind::kUnread, mail->box);
    a.rec.uid = mail->uid;
    a.rec.guid = mobilesync_mail_guid(mail);
    ctx->state->actions.push_back(std::move(a));
  } catch (...) {
    e_error(ctx->user->event, "mobilesync: internal error recording a flag change");
  }
}

/* The UIDs of saves and copies, in save order. */
static std::vector<uint32_t> mobilesync_saved_uids(
    const struct mail_transaction_commit_changes* changes) {
  std::vector<uint32_t> uids;
  const struct seq_range* range;
  array_foreach(&changes->saved_uids, range) {
    for (uint32_t uid = range->seq1;; ++uid) {
      uids.push_back(uid);
      if (uid == range->seq2) break;
    }
  }
  return uids;
}

static void mobilesync_mail_transaction_commit(void* txn,
                                               struct mail_transaction_commit_changes* changes) {
  struct mobilesync_mail_txn_context* ctx = mobilesync_txn(txn);
  if (ctx == nullptr) return;
  try {
    UserState* st = MOBILESYNC_USER_CONTEXT(ctx->user)->state;
    std::vector<uint32_t> uids;
    if (array_is_created(&changes->saved_uids)) uids = mobilesync_saved_uids(changes);
    bool lost_uid = false;
    std::vector<PendingAction*> deferred;
    for (PendingAction& a : ctx->state->actions) {
      if (a.save_index >= 0) {
        if (static_cast<size_t>(a.save_index) >= uids.size()) {
          e_debug(ctx->user->event,
                  "mobilesync: save #%d of %s has no UID (%zu reported, %d saves)",
                  a.save_index, mailbox_get_vname(ctx->box), uids.size(), ctx->state->saves);
          lost_uid = true;
          a.rec.uid = 0;
          continue;
        }
        a.rec.uid = uids[a.save_index];
      }
      if (a.guid_deferred) deferred.push_back(&a);
    }
    /* One instance of the saved-to mailbox serves the GUID lookup and,
       when it is INBOX (the common case: a delivery), the attribute write. */
    struct mailbox* own = nullptr;
    if (!deferred.empty() || ctx->uidvalidity == 0) {
      own = mobilesync_open_box(ctx->user, mailbox_get_vname(ctx->box));
      if (own != nullptr) mobilesync_fill_deferred(own, &deferred, &ctx->uidvalidity);
    }
    for (PendingAction& a : ctx->state->actions) {
      if (a.rec.uidvalidity == 0) a.rec.uidvalidity = ctx->uidvalidity;
    }
    std::vector<std::pair<std::string, std::string>> entries;
    for (PendingAction& a : ctx->state->actions) {
      if (a.rec.uid == 0) continue;  // lost, see above
      if (a.copy_only) {
        auto it = st->moves.find(a.copy_source);
        if (it != st->moves.end()) {
          it->second.resolved = true;
          it->second.uidvalidity = a.rec.uidvalidity;
          it->second.uid = a.rec.uid;
          it->second.guid = a.rec.guid;
        }
        continue;
      }
      std::string value;
      mobilesync::Status s = mobilesync::plugin::FormatActionValue(a.rec, &value);
      if (!s.ok()) {
        e_error(ctx->user->event, "mobilesync: BUG: %s", s.ToString().c_str());
        continue;
      }
      entries.emplace_back(a.key_id, std::move(value));
    }
    bool written = mobilesync_write_actions(
        ctx->user, own != nullptr && own->inbox_user ? own : nullptr, entries);
    if (own != nullptr) mailbox_free(&own);
    if (written && !entries.empty()) mobilesync_poke_later(ctx->user, false);
    if (lost_uid) {
      /* The backend did not report the saved UIDs: let the agent compare
         the whole mailbox instead of losing a change. */
      mobilesync_record_resync(ctx->user, "INBOX", "unknown-uid");
    }
  } catch (const std::bad_alloc&) {
    i_fatal_status(FATAL_OUTOFMEM, "mobilesync: out of memory");
  } catch (...) {
    e_error(ctx->user->event, "mobilesync: internal error at commit; changes not recorded");
  }
  mobilesync_txn_free(ctx);
}

static void mobilesync_mail_transaction_rollback(void* txn) {
  struct mobilesync_mail_txn_context* ctx = mobilesync_txn(txn);
  if (ctx != nullptr) mobilesync_txn_free(ctx);
}

/* Renaming, deleting or changing the UIDVALIDITY of INBOX, Trash or Sent
   invalidates every UID the agent mapped: it must start over. */
static void mobilesync_mailbox_changed(struct mailbox* box, const char* reason) {
  try {
    struct mail_user* user = mailbox_get_namespace(box)->user;
    struct mobilesync_user* muser = MOBILESYNC_USER_CONTEXT(user);
    if (muser == nullptr) return;
    if (mobilesync_box_role(box, muser->state) == BoxRole::kOther) return;
    mobilesync_record_resync(user, mailbox_get_vname(box), reason);
  } catch (...) {
    i_error("mobilesync: internal error recording a mailbox %s", reason);
  }
}

static void mobilesync_mailbox_update(struct mailbox* box) {
  mobilesync_mailbox_changed(box, "update");
}

static void* mobilesync_mailbox_delete_begin(struct mailbox* box) { return box; }

static void mobilesync_mailbox_delete_commit(void* /*txn*/, struct mailbox* box) {
  mobilesync_mailbox_changed(box, "delete");
}

static void mobilesync_mailbox_delete_rollback(void* /*txn*/) {}

static void mobilesync_mailbox_rename(struct mailbox* src, struct mailbox* /*dest*/) {
  mobilesync_mailbox_changed(src, "rename");
}

/* ---- user life cycle --------------------------------------------------- */

static void mobilesync_user_deinit(struct mail_user* user) {
  struct mobilesync_user* muser = MOBILESYNC_USER_CONTEXT(user);
  try {
    /* LMTP deinits the user after each delivery: the poke goes out now. */
    mobilesync_poke_flush(user);
  } catch (...) {
    e_error(user->event, "mobilesync: internal error at user deinit");
  }
  delete muser->state;
  muser->state = nullptr;
  muser->module_ctx.super.deinit(user);
}

static void mobilesync_mail_user_created(struct mail_user* user) {
  try {
    /* LMTP's raw user and shared-namespace owners are not real logins. */
    if (user->autocreated) return;
    mobilesync::plugin::PluginSettings settings;
    mobilesync::Status s = mobilesync::plugin::LoadPluginSettings(
        [user](const char* name) { return mail_user_plugin_getenv(user, name); }, &settings);
    if (!s.ok()) {
      e_error(user->event, "mobilesync: disabled for this user: %s", s.message().c_str());
      return;
    }
    if (!settings.enabled) return;
    /* The agent logs in as a master user to apply remote changes: those
       must not come back as actions. */
    const char* master = mail_user_plugin_getenv(user, "master_user");
    if (master != nullptr && *master != '\0') {
      e_debug(user->event, "mobilesync: master user session, changes not recorded");
      return;
    }

    struct mail_user_vfuncs* v = user->vlast;
    struct mobilesync_user* muser = p_new(user->pool, struct mobilesync_user, 1);
    muser->state = new UserState();
    muser->state->settings = settings;
    muser->module_ctx.super = *v;
    user->vlast = &muser->module_ctx.super;
    v->deinit = mobilesync_user_deinit;
    MODULE_CONTEXT_SET(user, mobilesync_user_module, muser);
    e_debug(user->event, "mobilesync: enabled for user %s", user->username);
  } catch (const std::bad_alloc&) {
    i_fatal_status(FATAL_OUTOFMEM, "mobilesync: out of memory");
  } catch (...) {
    e_error(user->event, "mobilesync: internal error, disabled for this user");
  }
}

static struct mail_storage_hooks mobilesync_mail_storage_hooks;
static struct notify_vfuncs mobilesync_vfuncs;

extern "C" {

const char* mobilesync_plugin_version = MOBILESYNC_ABI_VERSION;
const char* mobilesync_plugin_dependencies[] = {"notify", nullptr};

bool mobilesync_user_enabled(struct mail_user* user) {
  return user != nullptr && MOBILESYNC_USER_CONTEXT(user) != nullptr;
}

void mobilesync_user_request_sync(struct mail_user* user) {
  try {
    if (mobilesync_user_enabled(user)) mobilesync_poke_later(user, true);
  } catch (...) {
    e_error(user->event, "mobilesync: internal error requesting a sync");
  }
}

void mobilesync_plugin_init(struct module* module) {
  /* Filled by assignment: designated initialisers of C structs in C++ must
     follow declaration order and name every member before the last. */
  mobilesync_vfuncs.mail_transaction_begin = mobilesync_mail_transaction_begin;
  mobilesync_vfuncs.mail_save = mobilesync_mail_save;
  mobilesync_vfuncs.mail_copy = mobilesync_mail_copy;
  mobilesync_vfuncs.mail_expunge = mobilesync_mail_expunge;
  mobilesync_vfuncs.mail_update_flags = mobilesync_mail_update_flags;
  mobilesync_vfuncs.mail_transaction_commit = mobilesync_mail_transaction_commit;
  mobilesync_vfuncs.mail_transaction_rollback = mobilesync_mail_transaction_rollback;
  mobilesync_vfuncs.mailbox_update = mobilesync_mailbox_update;
  mobilesync_vfuncs.mailbox_delete_begin = mobilesync_mailbox_delete_begin;
  mobilesync_vfuncs.mailbox_delete_commit = mobilesync_mailbox_delete_commit;
  mobilesync_vfuncs.mailbox_delete_rollback = mobilesync_mailbox_delete_rollback;
  mobilesync_vfuncs.mailbox_rename = mobilesync_mailbox_rename;
  mobilesync_mail_storage_hooks.mail_user_created = mobilesync_mail_user_created;
  mail_storage_hooks_add(module, &mobilesync_mail_storage_hooks);
  mobilesync_notify_ctx = notify_register(&mobilesync_vfuncs);
}

void mobilesync_plugin_deinit(void) {
  mail_storage_hooks_remove(&mobilesync_mail_storage_hooks);
  notify_unregister(mobilesync_notify_ctx);
}

}  // extern "C"
