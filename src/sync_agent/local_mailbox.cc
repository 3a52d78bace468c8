#include "sync_agent/local_mailbox.h"

#include <openssl/rand.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "common/log.h"
#include "plugin/action_record.h"
#include "sync_agent/attribute_fields.h"
#include "sync_agent/cache_file.h"
#include "sync_agent/id_map_cache.h"
#include "sync_agent/imap/uid_set.h"
#include "sync_agent/listing_cache.h"
#include "sync_agent/quick_token.h"

namespace mobilesync::agent {

namespace {

using engine::Action;
using engine::ActionKind;
using engine::LocalId;
using engine::LocalMessage;
using engine::MessageMeta;
using engine::MessageState;
using engine::Op;
using engine::OpKind;
using imap::CommandResult;
using imap::FetchedMessage;
using imap::MailboxInfo;
using imap::MetadataMap;

const std::string kRoot = "/private/vendor/vendor.mobilesync";
const std::string kActionPrefix = kRoot + "/action/";
const std::string kMapPrefix = kRoot + "/map/";
const std::string kSubmittedPrefix = kRoot + "/submitted/";
const std::string kGenerationEntry = kRoot + "/generation";
// Written with the generation by a session that ended OK without changing
// the mailbox: the generation, N and the mailbox fingerprint it started
// from (LoadQuick). Deleted at the start of every full session.
const std::string kQuickEntry = kRoot + "/quick";
const std::string kMapStampEntry = kRoot + "/mapstamp";
const char kInbox[] = "INBOX";
const char kFetchItems[] =
    "(UID FLAGS INTERNALDATE RFC822.SIZE X-GUID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])";
const char kFetchItemsNoHeader[] = "(UID FLAGS INTERNALDATE RFC822.SIZE X-GUID)";
const char kFetchHeader[] = "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])";

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool HasFlag(const std::vector<std::string>& flags, std::string_view flag) {
  for (const std::string& f : flags) {
    if (IEquals(f, flag)) return true;
  }
  return false;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return std::string(s.substr(b, e - b));
}

// The unfolded, trimmed value of the first `name` header field of a message
// (or of a BODY[HEADER.FIELDS] block); "" when absent. Stops at the end of
// the header section.
std::string HeaderValue(std::string_view msg, std::string_view name) {
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t eol = msg.find('\n', pos);
    size_t next = eol == std::string_view::npos ? msg.size() : eol + 1;
    std::string_view line = msg.substr(pos, next - pos);
    if (line == "\n" || line == "\r\n") break;
    size_t colon = line.find(':');
    if (colon != std::string_view::npos && IEquals(Trim(line.substr(0, colon)), name)) {
      std::string value(line.substr(colon + 1));
      // Folded continuation lines start with a space or a tab.
      while (next < msg.size() && (msg[next] == ' ' || msg[next] == '\t')) {
        size_t e2 = msg.find('\n', next);
        size_t n2 = e2 == std::string_view::npos ? msg.size() : e2 + 1;
        value += " ";
        value += msg.substr(next, n2 - next);
        next = n2;
      }
      std::string out;
      for (char c : value) {
        if (c != '\r' && c != '\n') out.push_back(c);
      }
      return Trim(out);
    }
    pos = next;
  }
  return "";
}

// IMAP INTERNALDATE "22-Nov-2026 03:21:08 +0000" <-> Unix seconds.
const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool ParseInternalDate(const std::string& s, int64_t* out) {
  int day = 0, year = 0, h = 0, m = 0, sec = 0;
  char mon[4] = {0};
  char sign = '+';
  int zone = 0;
  if (sscanf(s.c_str(), " %d-%3s-%d %d:%d:%d %c%4d", &day, mon, &year, &h, &m, &sec, &sign,
             &zone) != 8) {
    return false;
  }
  int month = -1;
  for (int i = 0; i < 12; ++i) {
    if (IEquals(mon, kMonths[i])) month = i;
  }
  if (month < 0) return false;
  struct tm t = {};
  t.tm_year = year - 1900;
  t.tm_mon = month;
  t.tm_mday = day;
  t.tm_hour = h;
  t.tm_min = m;
  t.tm_sec = sec;
  int64_t v = timegm(&t);
  int64_t offset = (zone / 100) * 3600 + (zone % 100) * 60;
  *out = sign == '-' ? v + offset : v - offset;
  return true;
}

std::string FormatInternalDate(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm = {};
  gmtime_r(&t, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday, kMonths[tm.tm_mon],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string MapEntry(const LocalId& id) {
  return kMapPrefix + std::to_string(id.uidvalidity) + "-" + std::to_string(id.uid);
}

std::string MapValue(engine::RemoteId remote, const std::string& box, const std::string& guid) {
  return "v1 remote=" + std::to_string(remote) + " box=" + plugin::PercentEncode(box) +
         " guid=" + plugin::PercentEncode(guid);
}

const char* StateFlagAction(MessageState s) {
  return s == MessageState::kRead ? "+FLAGS.SILENT" : "-FLAGS.SILENT";
}

// The single UID of a COPYUID destination set ("17"); 0 when it is not one.
uint32_t SingleUid(const std::string& set) {
  uint64_t v = 0;
  if (!ParseU64(set, &v) || v == 0 || v > UINT32_MAX) return 0;
  return static_cast<uint32_t>(v);
}

// The Trash mailbox a fingerprint print names ("" for none or garbage).
std::string TrashInPrint(const std::string& print) {
  size_t at = print.find(" trash=");
  if (at == std::string::npos) return "";
  at += 7;
  // "<name>:<status>": spaces in the name are encoded, colons are not.
  std::string field = print.substr(at, print.find(' ', at) - at);
  size_t colon = field.rfind(':');
  if (colon == std::string::npos) return "";
  std::string name;
  if (!plugin::PercentDecode(field.substr(0, colon), &name)) return "";
  return name;
}

bool IsNonexistent(const CommandResult& r) {
  return !r.code.empty() && r.code[0].IsAtom("NONEXISTENT");
}

// The envelope sender of a message composed on the device: the address of
// its From header (the server writes the device's address there), else the
// user name. The organisation's MTA decides whether the user may use it.
std::string EnvelopeSender(const std::string& user, const std::string& message) {
  std::string from = HeaderValue(message, "from");
  size_t lt = from.rfind('<');
  if (lt != std::string::npos) {
    size_t gt = from.find('>', lt);
    from = gt == std::string::npos ? std::string() : from.substr(lt + 1, gt - lt - 1);
  }
  from = Trim(from);
  bool ok = !from.empty() && from.size() <= 254 && from.find('@') != std::string::npos;
  for (unsigned char c : from) {
    if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == ',' || c == ';')
      ok = false;
  }
  return ok ? from : user;
}

int64_t WallSeconds() {
  return static_cast<int64_t>(time(nullptr));
}

int64_t MonoMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

struct LocalMailbox::Impl {
  LocalMailbox* owner;
  imap::ImapClient* client;
  std::string user;
  LocalMailboxOptions options;
  MailSubmitter* submitter;
  // Expires with this object: callbacks of commands still in flight then
  // do nothing (the client may outlive us).
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  // From LIST (refreshed by every LoadSnapshot).
  bool boxes_known = false;
  std::string trash, sent;
  // Where the quick token's print says Trash was (TrashGuess).
  std::string trash_hint;
  bool trash_exists = false, sent_exists = false;
  // The mailbox selected now ("" when unknown), its UIDVALIDITY and its
  // HIGHESTMODSEQ when it was selected (0 without CONDSTORE).
  std::string selected;
  uint32_t selected_uv = 0;
  uint64_t selected_modseq = 0;
  // seq -> full entry name, from the last LoadSnapshot.
  std::map<uint64_t, std::string> action_keys;
  // Message GUIDs seen by the last LoadSnapshot (for map values).
  std::map<LocalId, std::string> guids;
  // Their sizes (RFC822.SIZE), to bound batched body fetches.
  std::map<LocalId, uint64_t> sizes;
  // Bodies fetched with the snapshot (AddMessageIds), taken by FetchBodies.
  std::map<LocalId, std::string> prefetched;
  // What the snapshot fetches ahead: the messages that arrived in INBOX
  // since the last session's listing are the ones an update sync inserts,
  // and fetching them while INBOX is still selected saves selecting it
  // again after Trash (~20 ms at 10,000 messages).
  static constexpr size_t kSnapshotPrefetchCount = 64;
  static constexpr uint64_t kSnapshotPrefetchBytes = 16u << 20;
  // The mailbox fingerprint read at the start of the last LoadSnapshot,
  // whether an op has changed the mailbox since, and the session's N.
  std::string start_fp;
  // The fingerprint LoadQuick took (after reading nothing but the
  // generation, quick and action entries): the snapshot that follows in the
  // same session starts from it instead of taking another (LIST, UNSELECT
  // and two STATUS commands).
  std::string quick_fp;
  bool mailbox_touched = false;
  // The snapshot found a quick entry that the next durable write deletes.
  bool quick_to_delete = false;
  // This session wrote a quick entry (with its generation) and nothing
  // deleted it since.
  bool quick_written = false;
  // The snapshot's own writes, written with the next durable write or
  // before the next mailbox op (at most kMaxDeferred entries).
  MetadataMap deferred;
  static constexpr size_t kMaxDeferred = 512;
  // One SETMETADATA command line: Dovecot's imap_max_line_length is 64 KiB.
  static constexpr size_t kMaxCommandBytes = 48 * 1024;
  uint32_t remote_window = 0;
  // The id map as Dovecot holds it (key after kMapPrefix -> value), from
  // the last LoadSnapshot and kept through our own writes, for the id map
  // cache (id_map_cache.h). Saved only while every map write since the
  // load is known to have succeeded.
  std::map<std::string, std::string> known_map;
  std::string known_stamp;  // the `mapstamp` value that goes with it
  int64_t known_read_s = 0;
  bool known_loaded = false, known_spoilt = false, known_dirty = false;
  int map_writes_in_flight = 0;

  template <typename F>
  auto Guard(F f) {
    std::weak_ptr<bool> w = alive;
    return [w, f = std::move(f)](auto&&... args) mutable {
      if (w.expired()) return;
      f(std::forward<decltype(args)>(args)...);
    };
  }

  using Next = std::function<void(const Status&)>;

  // --- Building blocks ------------------------------------------------------
  void EnsureBoxes(Next k) {
    if (boxes_known) return k(Status::OK());
    client->List(Guard([this, k](const CommandResult& r, std::vector<imap::ListEntry>&& list) {
      if (!r.status.ok()) return k(Status::Unavailable("LIST failed", r.text));
      std::string trash_flag, sent_flag;
      for (const auto& e : list) {
        if (trash_flag.empty() && e.HasFlag("\\Trash")) trash_flag = e.name;
        if (sent_flag.empty() && e.HasFlag("\\Sent")) sent_flag = e.name;
      }
      trash = trash_flag.empty() ? options.trash_mailbox : trash_flag;
      sent = sent_flag.empty() ? options.sent_mailbox : sent_flag;
      trash_exists = sent_exists = false;
      for (const auto& e : list) {
        if (e.HasFlag("\\NonExistent") || e.HasFlag("\\Noselect")) continue;
        if (e.name == trash) trash_exists = true;
        if (e.name == sent) sent_exists = true;
      }
      boxes_known = true;
      k(Status::OK());
    }));
  }

  void CreateBox(const std::string& box, const char* use, std::function<void(const Status&)> k) {
    std::string cmd_use =
        client->HasCapability("CREATE-SPECIAL-USE") ? std::string(" (USE (") + use + "))" : "";
    imap::CommandBuilder b(client->HasCapability("LITERAL+"));
    b.Raw("CREATE ").String(box).Raw(cmd_use);
    client->Command(b.Finish(), Guard([this, box, k](const CommandResult& r) {
                      bool exists = !r.code.empty() && r.code[0].IsAtom("ALREADYEXISTS");
                      if (!r.status.ok() && !exists) {
                        return k(Status::Unavailable("CREATE " + box + " failed", r.text));
                      }
                      if (box == trash) trash_exists = true;
                      if (box == sent) sent_exists = true;
                      k(Status::OK());
                    }));
  }

  void EnsureTrash(Next k) {
    EnsureBoxes([this, k](const Status& s) {
      if (!s.ok() || trash_exists) return k(s);
      CreateBox(trash, "\\Trash", k);
    });
  }

  void EnsureSent(Next k) {
    EnsureBoxes([this, k](const Status& s) {
      if (!s.ok() || sent_exists) return k(s);
      CreateBox(sent, "\\Sent", k);
    });
  }

  // SELECT `box` (skipped when it is selected already). `missing`: the
  // mailbox does not exist (not an error for the caller to decide).
  void Select(const std::string& box,
              std::function<void(const Status&, uint32_t uv, uint64_t exists, bool missing)> k) {
    if (selected == box && !box.empty()) {
      return k(Status::OK(), selected_uv, client->mailbox().exists, false);
    }
    selected.clear();
    client->Select(box, false, client->HasCapability("CONDSTORE"),
                   Guard([this, box, k](const CommandResult& r, const MailboxInfo& info) {
                     if (!r.status.ok()) {
                       if (IsNonexistent(r)) return k(Status::OK(), 0, 0, true);
                       return CheckMissing(box, r, k);
                     }
                     selected = box;
                     selected_uv = static_cast<uint32_t>(info.uidvalidity);
                     selected_modseq = info.highestmodseq;
                     k(Status::OK(), selected_uv, info.exists, false);
                   }));
  }

  // A SELECT was refused without [NONEXISTENT] (Dovecot 2.3 answers
  // "NO Mailbox doesn't exist" with no code): LIST tells whether it is there.
  void CheckMissing(const std::string& box, const CommandResult& select_result,
                    std::function<void(const Status&, uint32_t, uint64_t, bool)> k) {
    auto listed = std::make_shared<bool>(false);
    imap::CommandBuilder b(client->HasCapability("LITERAL+"));
    b.Raw("LIST \"\" ").String(box);
    std::string why = select_result.text;
    client->Command(b.Finish(), Guard([box, listed, why, k](const CommandResult& r) {
                      if (r.status.ok() && !*listed) return k(Status::OK(), 0, 0, true);
                      k(Status::Unavailable("SELECT " + box + " failed", why), 0, 0, false);
                    }),
                    [listed](const imap::ImapResponse& r) {
                      if (r.name != "LIST") return false;
                      *listed = true;
                      return true;
                    });
  }

  // The messages `uid_set` names in the selected `box`, as engine messages.
  // `record` (may be null): each message fetched goes into the listing
  // cache's listing too; one that came without every item spoils it.
  void FetchMessages(const std::string& box, uint32_t uv, const std::string& uid_set,
                     std::function<void(const Status&, std::vector<LocalMessage>)> k,
                     bool with_message_id = true, std::shared_ptr<BoxListing> record = nullptr) {
    auto out = std::make_shared<std::vector<LocalMessage>>();
    client->UidFetch(uid_set, with_message_id ? kFetchItems : kFetchItemsNoHeader,
                     Guard([this, out, box, uv, record](FetchedMessage&& m) {
                       if (m.uid == 0 || m.uid > UINT32_MAX) return;
                       if (record) Record(record.get(), m);
                       AppendLocal(box, uv, static_cast<uint32_t>(m.uid), Listed(m), out.get());
                     }),
                     Guard([out, box, k](const CommandResult& r) {
                       if (!r.status.ok()) {
                         return k(Status::Unavailable("UID FETCH in " + box + " failed", r.text),
                                  {});
                       }
                       k(Status::OK(), std::move(*out));
                     }));
  }

  // --- Listing INBOX and Trash -------------------------------------------------
  using Mapped = std::shared_ptr<const std::set<std::pair<uint32_t, uint32_t>>>;
  using ListDone = std::function<void(const Status&, uint32_t uv, std::vector<LocalMessage>)>;

  // A fetched message into `record`: complete (FLAGS, INTERNALDATE,
  // RFC822.SIZE, X-GUID) or the listing is spoilt (uidvalidity 0), as one
  // with an unsolicited FETCH of flags alone in it could be wrong.
  static void Record(BoxListing* record, const FetchedMessage& m) {
    if (m.uid == 0 || m.uid > UINT32_MAX) return;
    if (!m.has_flags || m.internaldate.empty() || m.guid.empty() ||
        m.guid.size() > kMaxListedGuidBytes) {
      record->uidvalidity = 0;
      return;
    }
    ListedMessage& l = record->messages[static_cast<uint32_t>(m.uid)];
    l = Listed(m);
    if (l.message_id.size() > kMaxListedMessageIdBytes) record->uidvalidity = 0;
  }

  // A fetched message as listed; its Message-ID is known when the header
  // was fetched.
  static ListedMessage Listed(const FetchedMessage& m) {
    ListedMessage l;
    l.seen = HasFlag(m.flags, "\\Seen");
    l.flagged = HasFlag(m.flags, "\\Flagged");
    int64_t date = 0;
    if (ParseInternalDate(m.internaldate, &date)) l.date = date;
    l.size = m.size;
    l.guid = m.guid;
    l.has_message_id = m.has_body;
    if (m.has_body) l.message_id = HeaderValue(m.body, "message-id");
    return l;
  }

  // The engine's message for `uid` of `box` as listed, appended to `out`
  // (unless it is over the size limit: never synced), with its GUID and size
  // kept for the session. Match key: its Message-ID when the listing knows
  // one, else its GUID (see AddMessageIds).
  void AppendLocal(const std::string& box, uint32_t uv, uint32_t uid, const ListedMessage& l,
                   std::vector<LocalMessage>* out) {
    if (l.size > options.max_message_bytes) return;
    LocalMessage lm;
    lm.id = LocalId{box, uv, uid};
    lm.meta.state = box == trash && box != kInbox ? MessageState::kTrash
                    : l.seen                      ? MessageState::kRead
                                                  : MessageState::kUnread;
    lm.meta.flagged = l.flagged;
    lm.meta.order = uid;
    lm.meta.date = l.date;
    lm.meta.match_key = l.has_message_id && !l.message_id.empty() ? l.message_id : l.guid;
    guids[lm.id] = l.guid;
    sizes[lm.id] = l.size;
    out->push_back(std::move(lm));
  }

  bool ListingCacheOn() const {
    return !options.listing_dir.empty() && client->HasCapability("CONDSTORE");
  }
  std::string ListingFile(const std::string& box) const {
    return ListingPath(options.listing_dir, user, box);
  }
  void SaveListing(const std::string& box, const BoxListing& l) {
    if (!ListingCacheOn()) return;
    Status s = l.uidvalidity != 0 && l.modseq != 0 ? WriteListing(ListingFile(box), l)
                                                   : RemoveListing(ListingFile(box));
    if (!s.ok()) LogDebug(user, "listing cache of " + box + " not kept: " + s.ToString());
  }

  // SELECT box and list all its messages; a missing box has none.
  // `mapped`: (UIDVALIDITY, uid) of the id map's entries. The engine looks
  // messages up by match key only while they are unmapped (pairing, a
  // server INSERT of a message we have), so a mapped message's Message-ID
  // is not fetched: on 10,000 messages that halves the listing. Its match
  // key is its GUID, which is all an insert of it needs should it be
  // unmapped and sent again in the same session.
  // With the listing cache, a box listed before is only asked what changed
  // since (ListChanges); either way the listing is kept for the next time.
  void ListBox(const std::string& box, Mapped mapped, ListDone k) {
    Select(box,
           [this, box, mapped, k](const Status& s, uint32_t uv, uint64_t exists, bool missing) {
             if (!s.ok()) return k(s, uv, {});
             if (missing || exists == 0) {
               if (ListingCacheOn()) (void)RemoveListing(ListingFile(box));
               return k(s, uv, {});
             }
             auto listing = std::make_shared<BoxListing>();
             if (ListingCacheOn() && selected_modseq != 0) {
               Status r = ReadListing(ListingFile(box), user, box, listing.get());
               if (r.ok() && ListingUsable(*listing, uv, selected_modseq, WallSeconds())) {
                 return ListChanges(box, uv, mapped, listing, k);
               }
               if (!r.ok() && !r.IsNotFound()) {
                 LogDebug(user, "listing cache of " + box + " not used: " + r.ToString());
               }
             }
             ListAll(box, uv, mapped, k);
           });
  }

  // Every message of the selected `box`.
  void ListAll(const std::string& box, uint32_t uv, Mapped mapped, ListDone k) {
    auto lower = mapped->lower_bound({uv, 0});
    const bool any_mapped = lower != mapped->end() && lower->first == uv;
    std::shared_ptr<BoxListing> record;
    if (ListingCacheOn() && selected_modseq != 0) {
      record = std::make_shared<BoxListing>();
      record->user = user;
      record->box = box;
      record->uidvalidity = uv;
      record->modseq = selected_modseq;  // before the FETCH: a change during it is seen again
      record->listed_s = WallSeconds();
    }
    FetchMessages(
        box, uv, "1:*",
        [this, box, uv, mapped, any_mapped, record, k](const Status& s2,
                                                       std::vector<LocalMessage> msgs) {
          if (!s2.ok()) return k(s2, uv, std::move(msgs));
          if (!any_mapped) {
            if (record) SaveListing(box, *record);
            return k(s2, uv, std::move(msgs));
          }
          AddMessageIds(box, uv, mapped, std::move(msgs), record, k);
        },
        !any_mapped, record);
  }

  // The selected `box` from `listing` (made at an earlier HIGHESTMODSEQ of
  // the same UIDVALIDITY): the UIDs there now, and what changed since.
  void ListChanges(const std::string& box, uint32_t uv, Mapped mapped,
                   std::shared_ptr<BoxListing> listing, ListDone k) {
    const uint64_t modseq = selected_modseq;
    auto fallback = [this, box, uv, mapped, k](const std::string& why) {
      LogDebug(user, "listing cache of " + box + ": " + why + ": listing every message");
      ListAll(box, uv, mapped, k);
    };
    auto present = std::make_shared<std::vector<uint64_t>>();
    const bool esearch = client->HasCapability("ESEARCH");
    client->Command(
        esearch ? "UID SEARCH RETURN (ALL) ALL" : "UID SEARCH ALL",
        Guard([this, box, uv, mapped, listing, modseq, present, fallback,
               k](const CommandResult& r) {
          if (!r.status.ok() || (present->size() == 1 && (*present)[0] == 0)) {
            return fallback("UID SEARCH failed");
          }
          auto changed = std::make_shared<std::map<uint32_t, ListedMessage>>();
          auto spoilt = std::make_shared<bool>(false);
          const std::string items = std::string(kFetchItemsNoHeader) + " (CHANGEDSINCE " +
                                    std::to_string(listing->modseq) + ")";
          client->UidFetch(
              "1:*", items, Guard([changed, spoilt](FetchedMessage&& m) {
                if (m.uid == 0 || m.uid > UINT32_MAX) return;
                BoxListing one;
                one.uidvalidity = 1;
                Record(&one, m);
                if (one.uidvalidity == 0 || one.messages.empty()) {
                  *spoilt = true;
                  return;
                }
                (*changed)[static_cast<uint32_t>(m.uid)] = std::move(one.messages.begin()->second);
              }),
              Guard([this, box, uv, mapped, listing, modseq, present, changed, spoilt, fallback,
                     k](const CommandResult& r2) {
                if (!r2.status.ok()) return fallback("UID FETCH CHANGEDSINCE failed");
                if (*spoilt) return fallback("an incomplete FETCH answer");
                const size_t n_changed = changed->size();
                if (!UpdateListing(listing.get(), *present, std::move(*changed), modseq)) {
                  return fallback("a message it cannot account for");
                }
                LogDebug(user, "listing cache of " + box + ": " +
                                   std::to_string(listing->messages.size()) + " messages, " +
                                   std::to_string(n_changed) + " changed");
                std::vector<LocalMessage> msgs = FromListing(box, uv, *listing);
                AddMessageIds(box, uv, mapped, std::move(msgs), listing, k,
                              /*prefetch=*/box == kInbox);
              }));
        }),
        [present, esearch](const imap::ImapResponse& r) {
          if (r.name != (esearch ? "ESEARCH" : "SEARCH")) return false;
          if (!esearch) {
            for (const imap::ImapValue& v : r.args) {
              uint64_t uid = 0;
              if (!v.ToNumber(&uid) || uid == 0 || uid > UINT32_MAX) return MarkBad(present);
              present->push_back(uid);
            }
            return true;
          }
          // (TAG "x") UID [ALL <set>]: without ALL the mailbox is empty.
          for (size_t i = 0; i + 1 < r.args.size(); ++i) {
            if (!r.args[i].IsAtom("ALL")) continue;
            if (!r.args[i + 1].is_atom() ||
                !imap::ParseUidSet(r.args[i + 1].text, kMaxListedMessages, present.get())) {
              return MarkBad(present);
            }
          }
          return true;
        });
  }

  // A SEARCH answer that does not parse: the listing cannot be trusted.
  static bool MarkBad(const std::shared_ptr<std::vector<uint64_t>>& present) {
    present->assign(1, 0);
    return true;
  }

  // The engine messages of a listing (AddMessageIds sets their match keys).
  std::vector<LocalMessage> FromListing(const std::string& box, uint32_t uv,
                                        const BoxListing& listing) {
    std::vector<LocalMessage> out;
    out.reserve(listing.messages.size());
    for (const auto& [uid, m] : listing.messages) AppendLocal(box, uv, uid, m, &out);
    return out;
  }

  // The Message-ID (match key) of the unmapped messages of a listing made
  // without it; the others keep their GUID as match key. `record`: known
  // Message-IDs are taken from it, those fetched go into it, and it is
  // kept as the box's listing. `prefetch` (a listing of changes): the
  // messages whose Message-ID is fetched are new since the last listing,
  // and their bodies are fetched too, in the same round trip, up to
  // kSnapshotPrefetchCount / kSnapshotPrefetchBytes (`prefetched`).
  void AddMessageIds(const std::string& box, uint32_t uv, Mapped mapped,
                     std::vector<LocalMessage> msgs, std::shared_ptr<BoxListing> record, ListDone k,
                     bool prefetch = false) {
    auto list = std::make_shared<std::vector<LocalMessage>>(std::move(msgs));
    auto index = std::make_shared<std::map<uint64_t, size_t>>();
    std::vector<uint64_t> uids;
    for (size_t i = 0; i < list->size(); ++i) {
      LocalMessage& m = (*list)[i];
      m.meta.match_key = guids[m.id];
      if (mapped->count({uv, m.id.uid}) != 0) continue;
      if (record) {
        auto known = record->messages.find(m.id.uid);
        if (known != record->messages.end() && known->second.has_message_id) {
          if (!known->second.message_id.empty()) m.meta.match_key = known->second.message_id;
          continue;
        }
      }
      uids.push_back(m.id.uid);
      (*index)[m.id.uid] = i;
    }
    if (uids.empty()) {
      if (record) SaveListing(box, *record);
      return k(Status::OK(), uv, std::move(*list));
    }
    auto ids = std::make_shared<MessageIdSink>(list, index, record);
    auto headers = [this, box, uv, list, record, ids, k](std::vector<uint64_t> rest) {
      auto done = [this, box, uv, list, record, k](const Status& s) {
        if (!s.ok()) return k(s, uv, {});
        if (record) SaveListing(box, *record);
        k(Status::OK(), uv, std::move(*list));
      };
      if (rest.empty()) return done(Status::OK());
      client->UidFetch(
          imap::UidSet(rest), kFetchHeader, Guard([ids](FetchedMessage&& m) { ids->Take(m); }),
          Guard([box, done](const CommandResult& r) {
            if (!r.status.ok()) {
              return done(Status::Unavailable("UID FETCH in " + box + " failed", r.text));
            }
            done(Status::OK());
          }));
    };
    if (!prefetch) return headers(std::move(uids));
    PrefetchBodies(box, uv, std::move(uids), ids, headers);
  }

  // Takes the Message-ID out of a FETCH answer (its header fields or its
  // whole body) for the listing and the engine message.
  struct MessageIdSink {
    MessageIdSink(std::shared_ptr<std::vector<LocalMessage>> l,
                  std::shared_ptr<std::map<uint64_t, size_t>> i, std::shared_ptr<BoxListing> r)
        : list(std::move(l)), index(std::move(i)), record(std::move(r)) {}
    void Take(const FetchedMessage& m) {
      auto it = index->find(m.uid);
      if (it == index->end() || !m.has_body) return;
      std::string id = HeaderValue(m.body, "message-id");
      if (record) {
        auto known = record->messages.find(static_cast<uint32_t>(m.uid));
        if (known != record->messages.end() && id.size() <= kMaxListedMessageIdBytes) {
          known->second.has_message_id = true;
          known->second.message_id = id;
        }
      }
      if (!id.empty()) (*list)[it->second].meta.match_key = std::move(id);
    }
    std::shared_ptr<std::vector<LocalMessage>> list;
    std::shared_ptr<std::map<uint64_t, size_t>> index;
    std::shared_ptr<BoxListing> record;
  };

  // Fetches the bodies of the first of `uids` (ascending, of the selected
  // `box`) within the bounds into `prefetched`, their Message-IDs into
  // `ids`, then calls `rest` with the UIDs whose Message-ID is still
  // needed. Not pipelined with that header fetch: Dovecot may run two
  // FETCH commands at once, and an untagged FETCH names no command. A
  // failure only means the bodies are fetched again when needed.
  template <typename F>
  void PrefetchBodies(const std::string& box, uint32_t uv, std::vector<uint64_t> uids,
                      std::shared_ptr<MessageIdSink> ids, F rest) {
    std::vector<uint64_t> pick;
    uint64_t bytes = 0;
    for (uint64_t uid : uids) {
      if (pick.size() >= kSnapshotPrefetchCount) break;
      auto size = sizes.find(LocalId{box, uv, static_cast<uint32_t>(uid)});
      if (size == sizes.end() || bytes + size->second > kSnapshotPrefetchBytes) break;
      bytes += size->second;
      pick.push_back(uid);
    }
    if (pick.empty()) return rest(std::move(uids));
    auto wanted = std::make_shared<std::set<uint64_t>>(pick.begin(), pick.end());
    auto got = std::make_shared<std::map<LocalId, std::string>>();
    auto all = std::make_shared<std::vector<uint64_t>>(std::move(uids));
    client->UidFetch(imap::UidSet(pick), "(UID BODY.PEEK[])",
                     Guard([box, uv, wanted, got, ids](FetchedMessage&& m) {
                       if (!m.has_body || wanted->count(m.uid) == 0) return;
                       ids->Take(m);
                       (*got)[LocalId{box, uv, static_cast<uint32_t>(m.uid)}] = std::move(m.body);
                     }),
                     Guard([this, box, uv, got, all, rest](const CommandResult& r) {
                       std::vector<uint64_t> left;
                       if (!r.status.ok()) {
                         LogDebug(user, "bodies not fetched ahead: " + r.status.ToString());
                         left = std::move(*all);
                       } else {
                         for (uint64_t uid : *all) {
                           if (got->count(LocalId{box, uv, static_cast<uint32_t>(uid)}) == 0)
                             left.push_back(uid);
                         }
                         for (auto& [id, body] : *got) prefetched[id] = std::move(body);
                       }
                       rest(std::move(left));
                     }));
  }

  // Every attribute write. One that changes the id map also sets
  // `mapstamp` anew, in the same command (one Dovecot transaction): the
  // stamp names the map (id_map_cache.h). So does the session's first write
  // when the map has no stamp yet.
  void SetMeta(MetadataMap values, Next k) {
    auto first = values.lower_bound(kMapPrefix);
    const bool map_write =
        (known_loaded && known_stamp.empty()) ||
        (first != values.end() && first->first.compare(0, kMapPrefix.size(), kMapPrefix) == 0);
    std::shared_ptr<MetadataMap> changes;
    if (map_write) {
      values[kMapStampEntry] = NewMapStamp();
      ++map_writes_in_flight;
      known_dirty = true;  // the cached map is no longer Dovecot's for sure
      if (known_loaded && !known_spoilt) changes = std::make_shared<MetadataMap>(values);
    }
    client->SetMetadata("", values, Guard([this, map_write, changes, k](const CommandResult& r) {
                          if (map_write) {
                            --map_writes_in_flight;
                            if (!r.status.ok() || !changes) known_spoilt = true;
                            if (!known_spoilt) KnowWritten(*changes);
                          }
                          if (!r.status.ok())
                            return k(Status::Unavailable("SETMETADATA failed", r.text));
                          k(Status::OK());
                        }));
  }

  // --- The id map cache ----------------------------------------------------------
  static std::string NewMapStamp() {
    uint64_t v = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
      // Unique enough without it: the stamp only has to differ from the
      // last one.
      v = static_cast<uint64_t>(WallSeconds()) * 1000003u ^ static_cast<uint64_t>(MonoMs()) ^
          (static_cast<uint64_t>(getpid()) << 40);
    }
    char buf[17];
    snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return std::string("v1 id=") + buf;
  }

  // The id map of `md` (read whole from Dovecot at `read_s`) as known.
  void KnowMap(const MetadataMap& md, int64_t read_s) {
    known_map.clear();
    for (auto it = md.lower_bound(kMapPrefix); it != md.end(); ++it) {
      if (it->first.compare(0, kMapPrefix.size(), kMapPrefix) != 0) break;
      if (it->second) known_map.emplace(it->first.substr(kMapPrefix.size()), *it->second);
    }
    auto st = md.find(kMapStampEntry);
    known_stamp = st != md.end() && st->second ? *st->second : std::string();
    known_read_s = read_s;
    known_loaded = true;
    known_spoilt = false;
    known_dirty = true;
  }

  // A write that Dovecot took.
  void KnowWritten(const MetadataMap& values) {
    for (auto it = values.lower_bound(kMapPrefix); it != values.end(); ++it) {
      if (it->first.compare(0, kMapPrefix.size(), kMapPrefix) != 0) break;
      std::string key = it->first.substr(kMapPrefix.size());
      if (it->second) {
        known_map[key] = *it->second;
      } else {
        known_map.erase(key);
      }
    }
    known_stamp = *values.at(kMapStampEntry);
    known_dirty = true;
  }

  bool IdMapCacheOn() const { return !options.listing_dir.empty(); }

  void SaveIdMap() {
    if (!IdMapCacheOn() || !known_loaded || !known_dirty) return;
    const std::string path = IdMapPath(options.listing_dir, user);
    if (known_spoilt || map_writes_in_flight != 0 || known_stamp.empty() ||
        known_stamp.size() > kMaxIdMapStampBytes) {
      // What Dovecot holds now is not known for sure: the next session
      // reads it whole (the stamp tells it so anyway; this saves it a read).
      (void)cache_file::Remove(path);
      known_dirty = false;
      return;
    }
    IdMapCache c;
    c.user = user;
    c.stamp = known_stamp;
    c.read_s = known_read_s;
    c.entries = known_map;
    Status s = WriteIdMap(path, c);
    if (!s.ok()) LogDebug(user, "id map cache not kept: " + s.ToString());
    known_dirty = false;
  }

  // The snapshot's attributes: everything under kRoot. With an id map cache
  // whose stamp is Dovecot's `mapstamp`, the map comes from the cache and
  // Dovecot is asked for the rest only.
  void LoadAttributes(std::function<void(const Status&, MetadataMap&&)> k) {
    known_loaded = false;
    known_map.clear();
    known_stamp.clear();
    auto cache = std::make_shared<IdMapCache>();
    bool have = false;
    if (IdMapCacheOn()) {
      Status r = ReadIdMap(IdMapPath(options.listing_dir, user), user, cache.get());
      have = r.ok();
      if (!r.ok() && !r.IsNotFound()) LogDebug(user, "id map cache not used: " + r.ToString());
    }
    if (!have) {
      return client->GetMetadata(
          "", {kRoot}, true, Guard([this, k](const CommandResult& r, MetadataMap&& md) {
            if (!r.status.ok()) return k(Status::Unavailable("GETMETADATA failed", r.text), {});
            KnowMap(md, WallSeconds());
            k(Status::OK(), std::move(md));
          }));
    }
    // Every subtree under kRoot but map/ (keep in step with docs/attributes.md).
    client->GetMetadata(
        "",
        {kRoot + "/action", kGenerationEntry, kQuickEntry, kRoot + "/submitted", kMapStampEntry},
        true, Guard([this, cache, k](const CommandResult& r, MetadataMap&& md) {
          if (!r.status.ok()) return k(Status::Unavailable("GETMETADATA failed", r.text), {});
          auto st = md.find(kMapStampEntry);
          const std::string stamp = st != md.end() && st->second ? *st->second : std::string();
          if (IdMapUsable(*cache, stamp, WallSeconds())) {
            for (const auto& [key, value] : cache->entries) md.emplace(kMapPrefix + key, value);
            LogDebug(user, "id map cache: " + std::to_string(cache->entries.size()) + " entries");
            known_map = std::move(cache->entries);
            known_stamp = stamp;
            known_read_s = cache->read_s;
            known_loaded = true;
            known_spoilt = false;
            known_dirty = false;
            return k(Status::OK(), std::move(md));
          }
          LogDebug(user, std::string("id map cache ") +
                             (cache->stamp == stamp ? "too old" : "of another stamp") +
                             ": reading the id map");
          auto rest = std::make_shared<MetadataMap>(std::move(md));
          client->GetMetadata("", {kRoot + "/map"}, true,
                              Guard([this, rest, k](const CommandResult& r2, MetadataMap&& map) {
                                if (!r2.status.ok()) {
                                  return k(Status::Unavailable("GETMETADATA failed", r2.text), {});
                                }
                                for (auto& [key, value] : map) (*rest)[key] = std::move(value);
                                KnowMap(*rest, WallSeconds());
                                k(Status::OK(), std::move(*rest));
                              }));
        }));
  }

  // Writes the maps in order. Consecutive maps are merged (a later value of
  // an entry replaces an earlier one, which is what running them in order
  // leaves) into commands of at most kMaxDurableBatch entries and
  // kMaxCommandBytes, each applied whole: a crash leaves a prefix of the
  // sequence written, as one command per map would.
  static size_t MapBytes(const MetadataMap& m) {
    size_t n = 0;
    for (const auto& [key, value] : m) n += key.size() + (value ? value->size() : 3) + 8;
    return n;
  }
  void SetMetaSequence(std::shared_ptr<std::vector<MetadataMap>> list, size_t i, Next k) {
    if (i >= list->size()) return k(Status::OK());
    MetadataMap merged;
    size_t bytes = 0;
    size_t j = i;
    while (j < list->size()) {
      const MetadataMap& next = (*list)[j];
      const size_t b = MapBytes(next);
      if (j != i && (merged.size() + next.size() > LocalMailbox::kMaxDurableBatch ||
                     bytes + b > kMaxCommandBytes)) {
        break;
      }
      for (const auto& [key, value] : next) merged[key] = value;
      bytes += b;
      ++j;
    }
    SetMeta(std::move(merged), [this, list, j, k](const Status& s) {
      if (!s.ok()) return k(s);
      SetMetaSequence(list, j, k);
    });
  }

  // The generation attribute's value; false (and `why`) when it is
  // unreadable or names another server.
  bool ParseGeneration(const std::string& value, engine::SyncGeneration* out, std::string* why) {
    std::map<std::string, std::string> f;
    uint64_t g = 0;
    std::string server;
    if (!ParseFields(value, &f) || !f.count("gen") || !ParseU64(f["gen"], &g) ||
        !plugin::PercentDecode(f["server"], &server)) {
      *why = "unparseable generation attribute";
      return false;
    }
    if (!owner->server_name_.empty() && server != owner->server_name_) {
      *why = "generation is for server '" + EscapeForLog(server, 100) + "', not ours";
      return false;
    }
    *out = g;
    return true;
  }

  // STATUS of `box`: "UIDVALIDITY.UIDNEXT.MESSAGES" (`weak`, "none" for a
  // missing mailbox) and its HIGHESTMODSEQ (`modseq`, "" without CONDSTORE).
  // The weak part leaves HIGHESTMODSEQ out: Dovecot raises it for every
  // attribute write (our own generation too), and an update sync does not
  // look at flags the plugin did not record anyway. That same property makes
  // the modseq part the cheap test of "no attribute changed" (QuickToken).
  void BoxFingerprint(const std::string& box,
                      std::function<void(const Status&, std::string, std::string)> k) {
    auto values = std::make_shared<std::map<std::string, uint64_t>>();
    const bool modseq = client->HasCapability("CONDSTORE");
    imap::CommandBuilder b(client->HasCapability("LITERAL+"));
    b.Raw("STATUS ").String(box).Raw(modseq ? " (UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)"
                                            : " (UIDVALIDITY UIDNEXT MESSAGES)");
    client->Command(b.Finish(), Guard([box, values, modseq, k](const CommandResult& r) {
                      if (!r.status.ok()) {
                        if (IsNonexistent(r)) return k(Status::OK(), "none", "none");
                        return k(Status::Unavailable("STATUS " + box + " failed", r.text), "", "");
                      }
                      std::string fp;
                      for (const char* item : {"UIDVALIDITY", "UIDNEXT", "MESSAGES"}) {
                        auto it = values->find(item);
                        fp += (fp.empty() ? "" : ".") +
                              (it == values->end() ? std::string("-") : std::to_string(it->second));
                      }
                      auto ms = values->find("HIGHESTMODSEQ");
                      std::string m;
                      if (modseq && ms != values->end()) m = std::to_string(ms->second);
                      k(Status::OK(), fp, m);
                    }),
                    [values](const imap::ImapResponse& r) {
                      if (r.name != "STATUS") return false;
                      if (r.args.size() >= 2 && r.args[1].is_list()) {
                        const auto& l = r.args[1].list;
                        for (size_t i = 0; i + 1 < l.size(); i += 2) {
                          uint64_t v = 0;
                          if (l[i].is_atom() && l[i + 1].ToNumber(&v)) {
                            std::string key = l[i].text;
                            for (char& c : key) c = static_cast<char>(toupper(c));
                            (*values)[key] = v;
                          }
                        }
                      }
                      return true;
                    });
  }

  // What the mailbox looks like from outside: INBOX's and Trash's STATUS
  // and the options that decide what is mirrored. Any new, expunged or
  // moved message changes `weak`, whether the plugin saw the change or not;
  // `strong` also changes with every flag and attribute change ("" when the
  // server has no CONDSTORE).
  struct Print {
    std::string weak;
    std::string strong;
  };
  using PrintDone = std::function<void(const Status&, Print)>;

  // The Print of INBOX's and Trash's STATUS (`t` "" when there is no Trash
  // to mirror).
  Print MakePrint(const std::string& inbox, const std::string& inbox_ms, const std::string& t,
                  const std::string& t_ms) const {
    std::string opts = "opts=" + std::to_string(options.max_message_bytes);
    Print p;
    if (t.empty()) {
      p.weak = "inbox=" + inbox + " trash=none " + opts;
      if (!inbox_ms.empty()) p.strong = p.weak + " modseq=" + inbox_ms;
      return p;
    }
    p.weak = "inbox=" + inbox + " trash=" + plugin::PercentEncode(trash) + ":" + t + " " + opts;
    if (!inbox_ms.empty() && !t_ms.empty()) p.strong = p.weak + " modseq=" + inbox_ms + "." + t_ms;
    return p;
  }

  // The mailbox Trash is expected to be before LIST says: the one LIST said
  // last, else the one the quick token's print names, else the default.
  std::string TrashGuess() const {
    if (boxes_known) return trash_exists && trash != kInbox ? trash : "";
    if (!trash.empty()) return trash;
    if (!trash_hint.empty()) return trash_hint;
    return options.trash_mailbox;
  }

  // The fingerprint: STATUS of INBOX and of the expected Trash, then LIST
  // (if not known yet) to check which mailbox Trash is; a wrong guess costs
  // one more STATUS. STATUS goes first because, once a LIST has run in an
  // IMAP process, Dovecot (2.3, maildir) re-reads the whole dovecot-uidlist
  // for every STATUS of INBOX: 5 ms at 10,000 messages, where a STATUS
  // before any LIST is answered from the index in 0.6 ms. Both see mail
  // that arrived behind Dovecot's back (the maildir's mtimes are checked).
  void Fingerprint(PrintDone k) {
    // Dovecot answers STATUS of the selected mailbox from the session's
    // view, which misses mail that arrived behind its back (a maildir
    // file): leave it first, so that STATUS looks at the mailbox itself.
    // The connection may come from an earlier session: whether a mailbox
    // is selected is not known here, and "BAD no mailbox selected" is fine.
    if (!client->HasCapability("UNSELECT")) return FingerprintBoxes(k);
    client->Command("UNSELECT", Guard([this, k](const CommandResult&) {
                      selected.clear();
                      FingerprintBoxes(k);
                    }));
  }

  // REQUIRES: no mailbox selected (Fingerprint).
  void FingerprintBoxes(PrintDone k) {
    BoxFingerprint(kInbox, [this, k](const Status& s, std::string inbox, std::string inbox_ms) {
      if (!s.ok()) return k(s, {});
      auto with_trash = [this, inbox, inbox_ms, k](std::string guess, std::string t,
                                                   std::string t_ms) {
        EnsureBoxes([this, inbox, inbox_ms, guess, t, t_ms, k](const Status& s2) {
          if (!s2.ok()) return k(s2, {});
          if (!trash_exists || trash == kInbox)
            return k(Status::OK(), MakePrint(inbox, inbox_ms, "", ""));
          if (!guess.empty() && guess == trash) {
            return k(Status::OK(), MakePrint(inbox, inbox_ms, t, t_ms));
          }
          BoxFingerprint(trash, [this, inbox, inbox_ms, k](const Status& s3, std::string t2,
                                                           std::string t2_ms) {
            if (!s3.ok()) return k(s3, {});
            k(Status::OK(), MakePrint(inbox, inbox_ms, t2, t2_ms));
          });
        });
      };
      std::string guess = TrashGuess();
      if (guess.empty() || guess == kInbox) return with_trash("", "", "");
      BoxFingerprint(guess, [guess, with_trash](const Status& s2, std::string t, std::string t_ms) {
        // A failed guess is no error: LIST decides, and its Trash is asked.
        if (!s2.ok() || t == "none") return with_trash("", "", "");
        with_trash(guess, std::move(t), std::move(t_ms));
      });
    });
  }

  // --- LoadQuick --------------------------------------------------------------
  void LoadQuick(const std::string& token, QuickDone done) {
    boxes_known = false;
    selected.clear();
    auto result = std::make_shared<QuickCheck>();
    QuickToken t;
    std::string why;
    const bool have_token = !token.empty() && ParseQuickToken(token, WallSeconds(), &t, &why);
    trash_hint = have_token ? TrashInPrint(t.print) : "";
    // The fingerprint first, before anything is read: a change after it
    // shows in what is read next, or in the next session's fingerprint.
    Fingerprint([this, token, have_token, t, result, done](const Status& s, Print now) {
      if (!s.ok()) return done(s, {});
      quick_fp = now.weak;
      if (have_token && !now.strong.empty() && t.print == now.strong) {
        // Nothing moved in INBOX or Trash since a quick check like this one
        // found nothing to do, attributes included (each raises INBOX's
        // HIGHESTMODSEQ): it would find the same now.
        result->unchanged = true;
        result->generation = t.generation;
        result->window_size = t.window_size;
        result->token = token;
        result->from_token = true;
        return done(Status::OK(), *result);
      }
      if (have_token && TrashInPrint(t.print) == TrashInPrint(now.weak) &&
          now.weak != t.print.substr(0, t.print.rfind(" modseq="))) {
        // Mail arrived, left or moved since the token was made: the quick
        // entry, whose fingerprint the token's is, cannot match either, so
        // the three entries are not worth reading (a new IMAP process pays
        // the whole attribute dict for them). At worst (a token older than
        // the entry) this costs a full session that was not needed. A token
        // that names another Trash says nothing about this one's mail: the
        // entries decide.
        result->unchanged = false;
        result->why = "the mailbox changed since the quick token";
        return done(Status::OK(), *result);
      }
      ReadQuickState(std::move(now), result, std::move(done));
    });
  }

  // The quick check's attribute part: the generation, the quick entry and
  // the action list (none), against `now` (taken just before).
  void ReadQuickState(Print now, std::shared_ptr<QuickCheck> result, QuickDone done) {
    auto no = [result, done](std::string why) {
      result->unchanged = false;
      result->why = std::move(why);
      done(Status::OK(), *result);
    };
    client->GetMetadata(
        "", {kGenerationEntry, kQuickEntry, kRoot + "/action"}, true,
        Guard([this, now, result, no, done](const CommandResult& r, MetadataMap&& md) {
          if (!r.status.ok()) return done(Status::Unavailable("GETMETADATA failed", r.text), {});
          for (const auto& [key, value] : md) {
            if (key.rfind(kActionPrefix, 0) == 0 && value) return no("action entries to replay");
          }
          auto git = md.find(kGenerationEntry);
          auto qit = md.find(kQuickEntry);
          if (git == md.end() || !git->second) return no("no generation");
          std::string why;
          if (!ParseGeneration(*git->second, &result->generation, &why)) return no(why);
          if (result->generation == 0) return no("no generation");
          if (qit == md.end() || !qit->second) return no("the last session changed the mailbox");
          std::map<std::string, std::string> f;
          uint64_t g = 0, n = 0;
          if (!ParseFields(*qit->second, &f) || !ParseU64(f["gen"], &g) || !ParseU64(f["n"], &n) ||
              n == 0 || n > UINT32_MAX || !f.count("fp")) {
            return no("unparseable quick entry");
          }
          if (g != result->generation) return no("quick entry of another generation");
          result->window_size = static_cast<uint32_t>(n);
          std::string stored;
          if (!plugin::PercentDecode(f["fp"], &stored)) return no("unparseable quick entry");
          if (now.weak != stored) {
            // `stored` comes from an attribute: bounded and escaped.
            return no("the mailbox changed (" + EscapeForLog(stored, 300) + " -> " +
                      EscapeForLog(now.weak, 300) + ")");
          }
          result->unchanged = true;
          if (now.strong.empty()) return done(Status::OK(), *result);
          // A token for the next check, if nothing moved while we read: the
          // same STATUS again (no LIST, nothing selected).
          FingerprintBoxes([result, now, done](const Status& s, Print again) {
            if (s.ok() && again.strong == now.strong) {
              result->token = MakeQuickToken(result->generation, result->window_size, now.strong,
                                             WallSeconds());
            }
            done(Status::OK(), *result);
          });
        }));
  }

  // The quick entry that goes with generation `g` (written with it).
  std::optional<std::string> QuickValue(engine::SyncGeneration g) const {
    if (g == 0 || mailbox_touched || start_fp.empty() || remote_window == 0) return std::nullopt;
    return "v1 gen=" + std::to_string(g) + " n=" + std::to_string(remote_window) +
           " fp=" + plugin::PercentEncode(start_fp);
  }

  // (UIDVALIDITY, uid) of every id-map entry with a value, from the keys.
  static std::shared_ptr<const std::set<std::pair<uint32_t, uint32_t>>> MappedUids(
      const MetadataMap& md) {
    auto out = std::make_shared<std::set<std::pair<uint32_t, uint32_t>>>();
    for (auto it = md.lower_bound(kMapPrefix); it != md.end(); ++it) {
      const std::string& key = it->first;
      if (key.compare(0, kMapPrefix.size(), kMapPrefix) != 0) break;
      if (!it->second) continue;
      std::string rest = key.substr(kMapPrefix.size());
      size_t dash = rest.find('-');
      uint64_t uv = 0, uid = 0;
      if (dash == std::string::npos || !ParseU64(rest.substr(0, dash), &uv) ||
          !ParseU64(rest.substr(dash + 1), &uid) || uv > UINT32_MAX || uid > UINT32_MAX) {
        continue;
      }
      out->insert({static_cast<uint32_t>(uv), static_cast<uint32_t>(uid)});
    }
    return out;
  }

  // `mapped` and the messages the user moved to or from Trash since the last
  // session while mapped: the snapshot moves their mapping with them (from
  // the action entries), so their Message-ID is not needed either. Fetching
  // it makes Dovecot open each moved message's file.
  static std::shared_ptr<const std::set<std::pair<uint32_t, uint32_t>>> WithMovedMappings(
      const MetadataMap& md,
      std::shared_ptr<const std::set<std::pair<uint32_t, uint32_t>>> mapped) {
    std::vector<std::pair<std::pair<uint32_t, uint32_t>, std::pair<uint32_t, uint32_t>>> moves;
    for (auto it = md.lower_bound(kActionPrefix); it != md.end(); ++it) {
      if (it->first.compare(0, kActionPrefix.size(), kActionPrefix) != 0) break;
      plugin::ActionRecord rec;
      if (!it->second || !plugin::ParseActionValue(*it->second, &rec).ok()) continue;
      if (rec.kind != plugin::ActionKind::kTrash && rec.kind != plugin::ActionKind::kRestore)
        continue;
      moves.push_back({{rec.src_uidvalidity, rec.src_uid}, {rec.uidvalidity, rec.uid}});
    }
    if (moves.empty()) return mapped;
    auto out = std::make_shared<std::set<std::pair<uint32_t, uint32_t>>>(*mapped);
    // Entries are not in seq order here (names sort as text): a message moved
    // again is found by going over them again (a few times at most: one
    // missed costs a Message-ID fetch, nothing else).
    for (int pass = 0; pass < 4; ++pass) {
      bool added = false;
      for (const auto& [src, dst] : moves) {
        if (out->count(src) != 0 && out->insert(dst).second) added = true;
      }
      if (!added) break;
    }
    return out;
  }

  // --- LoadSnapshot -----------------------------------------------------------
  struct Load {
    LoadDone done;
    MetadataMap md;
    uint32_t inbox_uv = 0, trash_uv = 0, sent_uv = 0;
    std::vector<LocalMessage> inbox, trash, sent;
    // When each step ended (monotonic ms), for the debug log's breakdown.
    int64_t started_ms = MonoMs(), metadata_ms = 0, inbox_ms = 0, trash_ms = 0;
  };

  void LoadSnapshot(LoadDone done) {
    auto st = std::make_shared<Load>();
    st->done = std::move(done);
    // LoadQuick's LIST of this session stands when its fingerprint is reused.
    if (quick_fp.empty()) boxes_known = false;
    selected.clear();
    guids.clear();
    sizes.clear();
    prefetched.clear();
    auto fail = [st](const Status& s) {
      st->done(Status(s), engine::AgentSnapshot(), SnapshotInfo());
    };
    start_fp.clear();
    mailbox_touched = false;
    // The fingerprint before anything is read: a change after it shows in
    // the next one (or in the action list), never only in this snapshot.
    // The quick check's, if this session took one: everything below is read
    // after it.
    auto fingerprint = [this](std::function<void(const Status&, std::string)> k) {
      if (quick_fp.empty()) {
        return Fingerprint([k](const Status& s, Print p) { k(s, std::move(p.weak)); });
      }
      std::string fp = std::move(quick_fp);
      quick_fp.clear();
      k(Status::OK(), std::move(fp));
    };
    fingerprint([this, st, fail](const Status& s, std::string fp) {
      if (!s.ok()) return fail(s);
      start_fp = std::move(fp);
      LoadAttributes([this, st, fail](const Status& r, MetadataMap&& md) {
        if (!r.ok()) return fail(r);
        st->md = std::move(md);
        st->metadata_ms = MonoMs();
        auto mapped = WithMovedMappings(st->md, MappedUids(st->md));
        ListBox(kInbox, mapped,
                [this, st, mapped, fail](const Status& s2, uint32_t uv,
                                         std::vector<LocalMessage> msgs) {
                  if (!s2.ok()) return fail(s2);
                  st->inbox_uv = uv;
                  st->inbox = std::move(msgs);
                  st->inbox_ms = MonoMs();
                  auto after_trash = [this, st, fail](const Status& s3, uint32_t tuv,
                                                      std::vector<LocalMessage> tmsgs) {
                    if (!s3.ok()) return fail(s3);
                    st->trash_uv = tuv;
                    st->trash = std::move(tmsgs);
                    st->trash_ms = MonoMs();
                    LoadSent(st, fail);
                  };
                  if (!trash_exists || trash == kInbox) return after_trash(Status::OK(), 0, {});
                  ListBox(trash, mapped, after_trash);
                });
      });
    });
  }

  // The Sent messages that `sent` entries name (for their meta).
  void LoadSent(std::shared_ptr<Load> st, std::function<void(const Status&)> fail) {
    std::vector<uint64_t> uids;
    for (const auto& [key, value] : st->md) {
      if (key.rfind(kActionPrefix, 0) != 0 || !value) continue;
      plugin::ActionRecord rec;
      if (plugin::ParseActionValue(*value, &rec).ok() && rec.kind == plugin::ActionKind::kSent &&
          rec.box == sent) {
        uids.push_back(rec.uid);
      }
    }
    if (uids.empty() || !sent_exists) return Finish(st);
    Select(sent,
           [this, st, fail, uids](const Status& s, uint32_t uv, uint64_t exists, bool missing) {
             if (!s.ok()) return fail(s);
             st->sent_uv = uv;
             if (missing || exists == 0) return Finish(st);
             FetchMessages(sent, uv, imap::UidSet(uids),
                           [this, st, fail](const Status& s2, std::vector<LocalMessage> msgs) {
                             if (!s2.ok()) return fail(s2);
                             st->sent = std::move(msgs);
                             Finish(st);
                           });
           });
  }

  void Finish(std::shared_ptr<Load> st) {
    SnapshotInfo info;
    info.trash_box = trash;
    info.sent_box = sent;
    engine::AgentSnapshot snap;
    snap.uidvalidity = st->inbox_uv;
    // Mapped messages live in INBOX or Trash, each with its own UIDVALIDITY.
    snap.mailbox_uidvalidity[kInbox] = st->inbox_uv;
    if (trash_exists && trash != kInbox) snap.mailbox_uidvalidity[trash] = st->trash_uv;
    std::map<LocalId, const LocalMessage*> by_id;
    for (auto* list : {&st->inbox, &st->trash, &st->sent}) {
      for (const LocalMessage& m : *list) by_id[m.id] = &m;
    }
    // Deletes (NIL) of entries that must go before the session starts, and
    // the mapping moves; run in order.
    auto persist = std::make_shared<std::vector<MetadataMap>>();
    std::vector<MetadataMap> late;  // after the generation delete
    engine::SyncGeneration generation = 0;
    bool resync = false;

    // Generation.
    auto git = st->md.find(kGenerationEntry);
    if (git != st->md.end() && git->second) {
      std::string why;
      if (!ParseGeneration(*git->second, &generation, &why)) {
        if (why.rfind("unparseable", 0) == 0) {
          LogWarning(user, why + ": initial sync");
        } else {
          LogInfo(user, why + ": initial sync");
        }
      }
    }
    // A session that fails half-way leaves the generation as it was, so the
    // quick entry goes with the session's first durable write (ApplyDurable):
    // before that, nothing this session did is recorded on our side, and
    // what the server may have applied is either still in the action list
    // (replayed entries go only once acknowledged and written) or follows
    // from a local change that the fingerprint shows. One SETMETADATA less
    // than deleting it here (40-80 ms on a 10,000-message maildir).
    quick_to_delete = st->md.count(kQuickEntry) != 0 && st->md[kQuickEntry].has_value();

    // The id map.
    for (const auto& [key, value] : st->md) {
      if (key.rfind(kMapPrefix, 0) != 0 || !value) continue;
      std::string rest = key.substr(kMapPrefix.size());
      size_t dash = rest.find('-');
      uint64_t uv = 0, uid = 0, remote = 0;
      std::map<std::string, std::string> f;
      std::string box;
      if (dash == std::string::npos || !ParseU64(rest.substr(0, dash), &uv) ||
          !ParseU64(rest.substr(dash + 1), &uid) || uv == 0 || uid == 0 || uv > UINT32_MAX ||
          uid > UINT32_MAX || !ParseFields(*value, &f) || !ParseU64(f["remote"], &remote) ||
          remote == 0 || !plugin::PercentDecode(f["box"], &box) || box.empty()) {
        LogWarning(user, "ignoring unparseable id map entry " + EscapeForLog(key, 200));
        continue;
      }
      LocalId id{box, static_cast<uint32_t>(uv), static_cast<uint32_t>(uid)};
      Status s = snap.map.Put(id, remote);
      if (!s.ok()) {
        LogWarning(user, "ignoring id map entry " + EscapeForLog(key, 200) + ": " + s.ToString());
      }
    }

    // The action list, in key order (std::map is sorted).
    action_keys.clear();
    uint64_t seq = 0;
    for (const auto& [key, value] : st->md) {
      if (key.rfind(kActionPrefix, 0) != 0 || !value) continue;
      ++info.action_entries;
      plugin::ActionRecord rec;
      Status s = plugin::ParseActionValue(*value, &rec);
      if (s.ok()) s = plugin::ValidateActionRecord(rec);
      if (!s.ok()) {
        // It cannot be replayed; a full resync (a list comparison) covers
        // whatever change it recorded. Deleted once the generation is gone,
        // like a resync entry: kept, it would force an initial sync forever.
        ++info.corrupt_entries;
        resync = true;
        LogWarning(user, "corrupt action entry " + EscapeForLog(key, 200) + ": " + s.ToString() +
                             "; full resync, entry deleted");
        late.push_back(MetadataMap{{key, std::nullopt}});
        continue;
      }
      if (rec.kind == plugin::ActionKind::kResync) {
        resync = true;
        LogInfo(user, "resync requested (" + EscapeForLog(rec.box, 100) + ": " +
                          EscapeForLog(rec.reason, 100) + ")");
        // Deleted once the generation is gone: that is its durable effect.
        late.push_back(MetadataMap{{key, std::nullopt}});
        continue;
      }
      Action a;
      a.local = LocalId{rec.box, rec.uidvalidity, rec.uid};
      auto found = by_id.find(a.local);
      if (found != by_id.end()) a.meta = found->second->meta;
      switch (rec.kind) {
        case plugin::ActionKind::kInsert: a.kind = ActionKind::kInsert; break;
        case plugin::ActionKind::kRead:
          a.kind = ActionKind::kMarkRead;
          a.meta.state = MessageState::kRead;
          break;
        case plugin::ActionKind::kUnread:
          a.kind = ActionKind::kMarkUnread;
          a.meta.state = MessageState::kUnread;
          break;
        case plugin::ActionKind::kTrash:
          a.kind = ActionKind::kMoveToTrash;
          a.meta.state = MessageState::kTrash;
          break;
        case plugin::ActionKind::kRestore:
          a.kind = ActionKind::kRestoreFromTrash;
          // The INBOX copy's \Seen; gone since: unread (a later entry or
          // the message list tells the rest).
          a.meta.state = found != by_id.end() ? found->second->meta.state : MessageState::kUnread;
          if (a.meta.state == MessageState::kTrash) a.meta.state = MessageState::kUnread;
          break;
        case plugin::ActionKind::kDestroy:
          a.kind = ActionKind::kDestroy;
          a.meta.state = MessageState::kDestroyed;
          break;
        case plugin::ActionKind::kSent:
          a.kind = ActionKind::kFiledAsSent;
          if (found == by_id.end()) {
            // Nothing left to file: the entry has no use any more.
            LogInfo(user, "sent entry " + EscapeForLog(key, 200) +
                              ": message no longer in Sent; dropped");
            late.push_back(MetadataMap{{key, std::nullopt}});
            continue;
          }
          break;
        case plugin::ActionKind::kResync: break;
      }
      if (rec.kind == plugin::ActionKind::kTrash || rec.kind == plugin::ActionKind::kRestore) {
        LocalId src{rec.src_box, rec.src_uidvalidity, rec.src_uid};
        const engine::RemoteId* r = snap.map.FindRemote(src);
        if (r != nullptr && !snap.map.HasLocal(a.local)) {
          engine::RemoteId remote = *r;
          snap.map.RemoveByLocal(src);
          Status ps = snap.map.Put(a.local, remote);
          if (ps.ok()) {
            MetadataMap move;
            move[MapEntry(src)] = std::nullopt;
            move[MapEntry(a.local)] = MapValue(remote, a.local.mailbox, rec.guid);
            persist->push_back(std::move(move));
          } else {
            (void)snap.map.Put(src, remote);  // keep the pairing as it was
            LogWarning(user,
                       "cannot move mapping of " + engine::ToString(src) + ": " + ps.ToString());
          }
        }
      }
      a.seq = ++seq;
      action_keys[a.seq] = key;
      snap.actions.push_back(std::move(a));
    }

    if (resync) {
      generation = 0;
      // First: from here on, a crash still leads to an initial sync.
      persist->insert(persist->begin(), MetadataMap{{kGenerationEntry, std::nullopt}});
    }
    for (auto& m : late) persist->push_back(std::move(m));
    snap.generation = generation;
    info.resync_requested = resync;
    for (auto* list : {&st->inbox, &st->trash}) {
      for (LocalMessage& m : *list) snap.messages.push_back(std::move(m));
    }
    // Without a resync, the snapshot's own writes (mapping moves, dropped
    // entries) wait for the session's first attribute write: until then a
    // crash leaves the action entries that make the next snapshot redo
    // them, and they cost a SETMETADATA of their own (40-80 ms on a
    // 10,000-message maildir). A mailbox op writes them first (MoveMapping
    // reads the id map from Dovecot).
    deferred.clear();
    size_t entries = 0;
    for (const MetadataMap& m : *persist) entries += m.size();
    if (!resync && entries <= kMaxDeferred) {
      for (const MetadataMap& m : *persist) {
        for (const auto& [key, value] : m) deferred[key] = value;
      }
      persist->clear();
    }
    auto snap_ptr = std::make_shared<engine::AgentSnapshot>(std::move(snap));
    SetMetaSequence(persist, 0, [this, st, snap_ptr, info](const Status& s) {
      if (!s.ok()) {
        return st->done(Status::Unavailable("load snapshot: persisting failed", s.message()),
                        engine::AgentSnapshot(), SnapshotInfo());
      }
      owner->info_ = info;
      const int64_t now = MonoMs();
      LogDebug(user, "snapshot in " + std::to_string(now - st->started_ms) +
                         " ms: fingerprint and attributes " +
                         std::to_string(st->metadata_ms - st->started_ms) + ", INBOX " +
                         std::to_string(st->inbox_ms - st->metadata_ms) + ", Trash " +
                         std::to_string(st->trash_ms - st->inbox_ms) + ", the rest " +
                         std::to_string(now - st->trash_ms));
      st->done(Status::OK(), std::move(*snap_ptr), info);
    });
  }

  // --- Ops ---------------------------------------------------------------------
  void Apply(const Op& op, const std::string& body, ApplyDone done) {
    auto fin = [op, done](const Status& s, const LocalId& id) {
      if (s.ok()) return done(s, id);
      std::string subject = op.local.valid() ? " " + engine::ToString(op.local) : "";
      if (op.kind == OpKind::kSubmitMessage || op.kind == OpKind::kFileInSent ||
          op.kind == OpKind::kAppendLocal) {
        subject = " remote " + std::to_string(op.message.id);
      }
      // Keep the cause's kind, name the op and its subject.
      const std::string what = std::string(engine::OpKindName(op.kind)) + subject;
      switch (s.code()) {
        case Status::Code::kNotFound: return done(Status::NotFound(what, s.message()), LocalId());
        case Status::Code::kInvalidArgument:
          return done(Status::InvalidArgument(what, s.message()), LocalId());
        case Status::Code::kTimeout: return done(Status::Timeout(what, s.message()), LocalId());
        default: return done(Status::Unavailable(what, s.message()), LocalId());
      }
    };
    if (op.kind == OpKind::kAppendLocal || op.kind == OpKind::kSetLocalState ||
        op.kind == OpKind::kDestroyLocal || op.kind == OpKind::kSubmitMessage ||
        op.kind == OpKind::kFileInSent) {
      if (!deferred.empty()) {
        return WriteDeferred([this, op, body, done](const Status& s) {
          if (!s.ok())
            return done(Status::Unavailable("load snapshot: persisting failed", s.message()),
                        LocalId());
          Apply(op, body, done);
        });
      }
      mailbox_touched = true;  // before the command: it may be half done
    }
    switch (op.kind) {
      case OpKind::kAppendLocal: return AppendLocal(op, body, fin);
      case OpKind::kSetLocalState: return SetLocalState(op, fin);
      case OpKind::kDestroyLocal:
        return DestroyLocal(op, [fin](const Status& s) { fin(s, LocalId()); });
      case OpKind::kSubmitMessage:
        return SubmitMessage(op, body, [fin](const Status& s) { fin(s, LocalId()); });
      case OpKind::kFileInSent:
        return FileInSent(op, body, [fin](const Status& s) { fin(s, LocalId()); });
      case OpKind::kPutMapping:
      case OpKind::kRemoveMapping:
      case OpKind::kDeleteActionEntry:
      case OpKind::kSetGeneration: return ApplyDurable({op}, fin);
      case OpKind::kSend:
      case OpKind::kReport:
      case OpKind::kDone: break;
    }
    fin(Status::InvalidArgument("not a mailbox op"), LocalId());
  }

  // The attribute write of one durable op, added to `m` (a later op on the
  // same entry replaces an earlier one, as if they ran in order).
  Status DurableEntry(const Op& op, MetadataMap* m) {
    switch (op.kind) {
      case OpKind::kPutMapping: {
        if (!op.local.valid() || op.remote == engine::kNoRemoteId) {
          return Status::InvalidArgument("invalid local or remote id");
        }
        auto g = guids.find(op.local);
        std::string guid = g == guids.end() ? "" : g->second;
        (*m)[MapEntry(op.local)] = MapValue(op.remote, op.local.mailbox, guid);
        return Status::OK();
      }
      case OpKind::kRemoveMapping: (*m)[MapEntry(op.local)] = std::nullopt; return Status::OK();
      case OpKind::kDeleteActionEntry: {
        auto it = action_keys.find(op.seq);
        if (it == action_keys.end()) {
          return Status::InvalidArgument("unknown action entry seq " + std::to_string(op.seq) +
                                         " (not from the last snapshot)");
        }
        (*m)[it->second] = std::nullopt;
        return Status::OK();
      }
      case OpKind::kSetGeneration: {
        std::optional<std::string> v;
        if (op.generation != 0) {
          v = "v1 gen=" + std::to_string(op.generation) +
              " server=" + plugin::PercentEncode(owner->server_name_);
        }
        (*m)[kGenerationEntry] = v;
        (*m)[kQuickEntry] = QuickValue(op.generation);
        return Status::OK();
      }
      default: return Status::InvalidArgument("not a durable op");
    }
  }

  // Durable ops in one SETMETADATA: Dovecot applies the entries of one
  // command in one attribute transaction, so the batch is written whole or
  // not at all (the file dict rewrites its file once, not once per entry).
  void ApplyDurable(const std::vector<Op>& ops, ApplyDone fin) {
    // In order: what the snapshot deferred, the quick entry's delete (a
    // generation write in the ops overrides it), then one map per op.
    auto list = std::make_shared<std::vector<MetadataMap>>();
    if (!deferred.empty()) list->push_back(deferred);
    if (quick_to_delete) list->push_back(MetadataMap{{kQuickEntry, std::nullopt}});
    std::optional<bool> quick;  // set when the batch writes the generation
    for (const Op& op : ops) {
      MetadataMap m;
      Status s = DurableEntry(op, &m);
      if (!s.ok()) return fin(s, LocalId());
      if (op.kind == OpKind::kSetGeneration) quick = m[kQuickEntry].has_value();
      list->push_back(std::move(m));
    }
    if (quick_to_delete || quick) quick_written = false;  // until it is written
    SetMetaSequence(list, 0, [this, quick, fin](const Status& s) {
      if (s.ok()) {
        quick_to_delete = false;
        deferred.clear();
        if (quick) quick_written = *quick;
      }
      fin(s, LocalId());
    });
  }

  // Writes what the snapshot deferred (and the quick entry's delete), if
  // anything.
  void WriteDeferred(Next k) {
    if (deferred.empty() && !quick_to_delete) return k(Status::OK());
    MetadataMap m = deferred;
    if (quick_to_delete) m[kQuickEntry] = std::nullopt;
    SetMeta(std::move(m), [this, k](const Status& s) {
      if (s.ok()) {
        quick_to_delete = false;
        deferred.clear();
      }
      k(s);
    });
  }

  void AppendLocal(const Op& op, const std::string& body, ApplyDone fin) {
    const MessageMeta& meta = op.message.meta;
    bool to_trash = meta.state == MessageState::kTrash;
    auto go = [this, meta, body, to_trash, fin](const Status& s) {
      if (!s.ok()) return fin(s, LocalId());
      std::string box = to_trash ? trash : kInbox;
      std::vector<std::string> flags;
      if (meta.state == MessageState::kRead) flags.push_back("\\Seen");
      if (meta.flagged) flags.push_back("\\Flagged");
      std::string flag_list;
      if (!flags.empty()) {
        flag_list = "(";
        for (size_t i = 0; i < flags.size(); ++i) flag_list += (i ? " " : "") + flags[i];
        flag_list += ")";
      }
      std::string date = meta.date > 0 ? FormatInternalDate(meta.date) : "";
      client->Append(
          box, flag_list, date, body,
          Guard([box, fin](const CommandResult& r, const imap::AppendUid& uid) {
            if (!r.status.ok()) {
              return fin(Status::Unavailable("APPEND to " + box + " failed", r.text), LocalId());
            }
            if (uid.uid == 0 || uid.uid > UINT32_MAX || uid.uidvalidity > UINT32_MAX) {
              return fin(Status::Unavailable("APPEND to " + box + ": no APPENDUID"), LocalId());
            }
            fin(Status::OK(), LocalId{box, static_cast<uint32_t>(uid.uidvalidity),
                                      static_cast<uint32_t>(uid.uid)});
          }));
    };
    if (to_trash) return EnsureTrash(go);
    EnsureBoxes(go);
  }

  // SELECT op.local's box and check its UIDVALIDITY; `k(status, gone)`:
  // gone when the box or that UIDVALIDITY no longer exists.
  void SelectFor(const LocalId& id, std::function<void(const Status&, bool gone)> k) {
    Select(id.mailbox, [id, k](const Status& s, uint32_t uv, uint64_t, bool missing) {
      if (!s.ok()) return k(s, false);
      k(Status::OK(), missing || uv != id.uidvalidity);
    });
  }

  // Moves `id` to `dest`; the new id from COPYUID. Also moves its id map
  // entry, if it has one (the plugin does not record our own moves).
  void Move(const LocalId& id, const std::string& dest, ApplyDone k) {
    client->UidMoveWithUids(
        std::to_string(id.uid), dest,
        Guard([this, id, dest, k](const CommandResult& r, const imap::CopyUid& cu) {
          if (!r.status.ok()) {
            return k(Status::Unavailable("UID MOVE to " + dest + " failed", r.text), LocalId());
          }
          uint32_t uid = SingleUid(cu.dest);
          if (uid == 0 || cu.uidvalidity == 0 || cu.uidvalidity > UINT32_MAX) {
            return k(Status::NotFound("uid " + std::to_string(id.uid) + " not in " + id.mailbox +
                                      " (no COPYUID)"),
                     LocalId());
          }
          LocalId nid{dest, static_cast<uint32_t>(cu.uidvalidity), uid};
          auto g = guids.find(id);
          if (g != guids.end()) guids[nid] = g->second;
          MoveMapping(id, nid, [nid, k](const Status& s) { k(s, s.ok() ? nid : LocalId()); });
        }));
  }

  void MoveMapping(const LocalId& from, const LocalId& to, Next k) {
    std::string old_entry = MapEntry(from);
    client->GetMetadata(
        "", {old_entry}, false,
        Guard([this, from, to, old_entry, k](const CommandResult& r, MetadataMap&& md) {
          if (!r.status.ok()) return k(Status::Unavailable("GETMETADATA failed", r.text));
          auto it = md.find(old_entry);
          std::map<std::string, std::string> f;
          std::string box;
          uint64_t remote = 0;
          if (it == md.end() || !it->second || !ParseFields(*it->second, &f) ||
              !plugin::PercentDecode(f["box"], &box) || box != from.mailbox ||
              !ParseU64(f["remote"], &remote) || remote == 0) {
            return k(Status::OK());  // not mapped (or not this box's entry)
          }
          std::string guid;
          (void)plugin::PercentDecode(f["guid"], &guid);
          SetMeta({{old_entry, std::nullopt}, {MapEntry(to), MapValue(remote, to.mailbox, guid)}},
                  k);
        }));
  }

  void SetLocalState(const Op& op, ApplyDone fin) {
    const LocalId id = op.local;
    const MessageState target = op.state;
    if (target == MessageState::kDestroyed) {
      return fin(Status::InvalidArgument("destroyed is not a state to set"), LocalId());
    }
    EnsureBoxes([this, id, target, fin](const Status& s) {
      if (!s.ok()) return fin(s, LocalId());
      bool in_trash = id.mailbox == trash && id.mailbox != kInbox;
      if (id.mailbox != kInbox && !in_trash) {
        return fin(Status::InvalidArgument("not an INBOX or Trash message"), LocalId());
      }
      if (in_trash && target == MessageState::kTrash) return fin(Status::OK(), id);
      auto after_select = [this, id, target, in_trash, fin](const Status& s2, bool gone) {
        if (!s2.ok()) return fin(s2, LocalId());
        if (gone) {
          return fin(Status::NotFound(id.mailbox + " UIDVALIDITY " +
                                      std::to_string(id.uidvalidity) + " is gone"),
                     LocalId());
        }
        if (!in_trash && target == MessageState::kTrash) return Move(id, trash, fin);
        // Read/unread: set \Seen where it is (it travels with a MOVE).
        client->UidStore(std::to_string(id.uid), StateFlagAction(target), "\\Seen",
                         Guard([this, id, in_trash, fin](const CommandResult& r) {
                           if (!r.status.ok()) {
                             return fin(Status::Unavailable("UID STORE failed", r.text), LocalId());
                           }
                           if (!in_trash) return fin(Status::OK(), id);
                           Move(id, kInbox, fin);  // restore
                         }));
      };
      if (!in_trash && target == MessageState::kTrash) {
        return EnsureTrash([this, id, after_select, fin](const Status& s3) {
          if (!s3.ok()) return fin(s3, LocalId());
          SelectFor(id, after_select);
        });
      }
      SelectFor(id, after_select);
    });
  }

  // A UID SEARCH command (CommandBuilder chunks) in the selected mailbox;
  // the uids found.
  void UidSearch(std::vector<std::string> command,
                 std::function<void(const Status&, std::vector<uint64_t>)> k) {
    auto found = std::make_shared<std::vector<uint64_t>>();
    client->Command(std::move(command), Guard([found, k](const CommandResult& r) {
                      if (!r.status.ok())
                        return k(Status::Unavailable("UID SEARCH failed", r.text), {});
                      k(Status::OK(), std::move(*found));
                    }),
                    [found](const imap::ImapResponse& r) {
                      if (r.name != "SEARCH") return false;
                      for (const imap::ImapValue& v : r.args) {
                        uint64_t uid = 0;
                        if (v.ToNumber(&uid) && uid != 0 && uid <= UINT32_MAX)
                          found->push_back(uid);
                      }
                      return true;
                    });
  }

  // \Deleted and UID EXPUNGE of `uids` in the selected mailbox.
  void ExpungeUids(const std::vector<uint64_t>& uids, Next k) {
    const std::string set = imap::UidSet(uids);
    client->UidStore(
        set, "+FLAGS.SILENT", "\\Deleted", Guard([this, set, k](const CommandResult& r) {
          if (!r.status.ok()) return k(Status::Unavailable("UID STORE \\Deleted failed", r.text));
          client->UidExpunge(set, Guard([k](const CommandResult& r2) {
                               if (!r2.status.ok()) {
                                 return k(Status::Unavailable("UID EXPUNGE failed", r2.text));
                               }
                               k(Status::OK());
                             }));
        }));
  }

  // Destroys `id`. When its uid is gone but the message was listed with a
  // GUID, the user may have moved it (INBOX <-> Trash) after the snapshot:
  // the copy with that GUID in INBOX or Trash is the message the server
  // destroyed, and is destroyed instead (docs/engine.md). Missing
  // everywhere: success (idempotent).
  void DestroyLocal(const Op& op, Next k) {
    const LocalId id = op.local;
    auto g = guids.find(id);
    const std::string guid = g == guids.end() ? "" : g->second;
    SelectFor(id, [this, id, guid, k](const Status& s, bool gone) {
      if (!s.ok() || gone) return k(s);  // a missing box or UIDVALIDITY: done
      imap::CommandBuilder b(false);
      b.Raw("UID SEARCH UID " + std::to_string(id.uid));
      UidSearch(b.Finish(), [this, id, guid, k](const Status& s2, std::vector<uint64_t> uids) {
        if (!s2.ok()) return k(s2);
        if (!uids.empty()) return ExpungeUids(uids, k);
        if (guid.empty()) return k(Status::OK());
        std::vector<std::string> boxes{kInbox};
        if (trash_exists && trash != kInbox) boxes.push_back(trash);
        DestroyByGuid(id, guid, std::move(boxes), 0, k);
      });
    });
  }

  void DestroyByGuid(const LocalId& id, const std::string& guid, std::vector<std::string> boxes,
                     size_t i, Next k) {
    if (i >= boxes.size()) return k(Status::OK());
    const std::string box = boxes[i];
    Select(box, [this, id, guid, boxes, i, box, k](const Status& s, uint32_t uv, uint64_t exists,
                                                   bool missing) {
      if (!s.ok()) return k(s);
      auto next = [this, id, guid, boxes, i, k](const Status& s2) {
        if (!s2.ok()) return k(s2);
        DestroyByGuid(id, guid, boxes, i + 1, k);
      };
      if (missing || exists == 0) return next(Status::OK());
      imap::CommandBuilder b(client->HasCapability("LITERAL+"));
      b.Raw("UID SEARCH X-GUID ").String(guid);
      UidSearch(b.Finish(),
                [this, id, box, uv, next](const Status& s3, std::vector<uint64_t> uids) {
                  if (!s3.ok() || uids.empty()) return next(s3);
                  std::string names;
                  for (uint64_t u : uids) names += " " + std::to_string(u);
                  LogInfo(user, "destroy " + engine::ToString(id) +
                                    ": moved since the snapshot, destroying it in " + box + " uid" +
                                    names + " (same GUID)");
                  ExpungeUids(uids, next);
                });
    });
  }

  void SubmitMessage(const Op& op, const std::string& body, Next k) {
    if (submitter == nullptr) {
      return k(Status::Unavailable("no mail submitter configured (submission_host/sendmail_path)"));
    }
    if (op.message.id == engine::kNoRemoteId) return k(Status::InvalidArgument("no remote id"));
    const std::string entry = kSubmittedPrefix + std::to_string(op.message.id);
    client->GetMetadata("", {entry}, false,
                        Guard([this, op, body, entry, k](const CommandResult& r, MetadataMap&& md) {
                          if (!r.status.ok())
                            return k(Status::Unavailable("GETMETADATA failed", r.text));
                          auto it = md.find(entry);
                          if (it != md.end() && it->second) {
                            LogInfo(user, "remote " + std::to_string(op.message.id) +
                                              " was submitted before; filing only");
                            return FileInSent(op, body, k);
                          }
                          std::weak_ptr<bool> w = alive;
                          submitter->Submit(
                              EnvelopeSender(user, body), body,
                              [this, w, op, body, entry, k](const Status& s) {
                                if (w.expired()) return;
                                if (!s.ok()) return k(s);
                                // The MTA has it: record that before anything else can fail.
                                SetMeta({{entry, "v1 ts=" + std::to_string(time(nullptr))}},
                                        [this, op, body, k](const Status& s2) {
                                          if (!s2.ok()) return k(s2);
                                          FileInSent(op, body, k);
                                        });
                              });
                        }));
  }

  void FileInSent(const Op& op, const std::string& body, Next k) {
    const std::string message_id = HeaderValue(body, "message-id");
    const int64_t date = op.message.meta.date;
    EnsureSent([this, message_id, body, date, k](const Status& s) {
      if (!s.ok()) return k(s);
      auto append = [this, body, date, k]() {
        client->Append(sent, "(\\Seen)", date > 0 ? FormatInternalDate(date) : "", body,
                       Guard([this, k](const CommandResult& r, const imap::AppendUid&) {
                         if (!r.status.ok()) {
                           return k(Status::Unavailable("APPEND to " + sent + " failed", r.text));
                         }
                         k(Status::OK());
                       }));
      };
      if (message_id.empty()) return append();
      Select(sent,
             [this, message_id, append, k](const Status& s2, uint32_t, uint64_t, bool missing) {
               if (!s2.ok()) return k(s2);
               // Always searched: a cached selection's EXISTS may be stale.
               if (missing) return append();
               imap::CommandBuilder b(client->HasCapability("LITERAL+"));
               b.Raw("UID SEARCH HEADER Message-ID ").String(message_id);
               UidSearch(b.Finish(), [append, k](const Status& s3, std::vector<uint64_t> uids) {
                 if (!s3.ok()) return k(s3);
                 if (!uids.empty()) return k(Status::OK());  // filed before
                 append();
               });
             });
    });
  }

  void FetchBodies(const std::vector<LocalId>& all, BodiesDone done) {
    // What the snapshot fetched ahead needs no SELECT and no round trip.
    auto out = std::make_shared<std::map<LocalId, std::string>>();
    std::vector<LocalId> ids;
    for (const LocalId& id : all) {
      auto it = prefetched.find(id);
      if (it == prefetched.end()) {
        ids.push_back(id);
        continue;
      }
      (*out)[id] = std::move(it->second);
      prefetched.erase(it);
    }
    if (ids.empty()) return done(Status::OK(), std::move(*out));
    const LocalId first = ids.front();
    SelectFor(first, [this, ids, first, out, done](const Status& s, bool gone) {
      if (!s.ok()) return done(s, {});
      if (gone) return done(Status::OK(), std::move(*out));
      std::vector<uint64_t> uids;
      for (const LocalId& id : ids) {
        if (id.mailbox == first.mailbox && id.uidvalidity == first.uidvalidity)
          uids.push_back(id.uid);
      }
      auto wanted = std::make_shared<std::set<uint64_t>>(uids.begin(), uids.end());
      client->UidFetch(
          imap::UidSet(uids), "(UID BODY.PEEK[])", Guard([first, wanted, out](FetchedMessage&& m) {
            if (!m.has_body || wanted->count(m.uid) == 0) return;
            (*out)[LocalId{first.mailbox, first.uidvalidity, static_cast<uint32_t>(m.uid)}] =
                std::move(m.body);
          }),
          Guard([first, out, done](const CommandResult& r) {
            if (!r.status.ok()) {
              return done(Status::Unavailable("fetch bodies in " + first.mailbox, r.text), {});
            }
            done(Status::OK(), std::move(*out));
          }));
    });
  }

  void FetchBody(const LocalId& id, BodyDone done) {
    FetchBodies({id}, [id, done](const Status& s, std::map<LocalId, std::string> bodies) {
      if (!s.ok()) return done(s, "");
      auto it = bodies.find(id);
      if (it == bodies.end()) {
        return done(Status::NotFound("fetch body: " + engine::ToString(id) + " is gone"), "");
      }
      done(Status::OK(), std::move(it->second));
    });
  }
};

LocalMailbox::LocalMailbox(imap::ImapClient* client, std::string user, LocalMailboxOptions options,
                           MailSubmitter* submitter)
    : impl_(std::make_unique<Impl>()) {
  impl_->owner = this;
  impl_->client = client;
  impl_->user = std::move(user);
  impl_->options = std::move(options);
  impl_->submitter = submitter;
}

LocalMailbox::~LocalMailbox() = default;

void LocalMailbox::LoadSnapshot(LoadDone done) {
  impl_->LoadSnapshot(std::move(done));
}

void LocalMailbox::LoadQuick(const std::string& token, QuickDone done) {
  impl_->LoadQuick(token, std::move(done));
}

void LocalMailbox::SaveIdMapCache() {
  impl_->SaveIdMap();
}

bool LocalMailbox::wrote_quick_entry() const {
  return impl_->quick_written;
}

void LocalMailbox::set_remote_window(uint32_t n) {
  impl_->remote_window = n;
}

void LocalMailbox::FetchBodies(const std::vector<engine::LocalId>& ids, BodiesDone done) {
  impl_->FetchBodies(ids, std::move(done));
}

uint64_t LocalMailbox::ListedSize(const engine::LocalId& id) const {
  auto it = impl_->sizes.find(id);
  return it == impl_->sizes.end() ? 0 : it->second;
}

void LocalMailbox::FetchBody(const engine::LocalId& id, BodyDone done) {
  impl_->FetchBody(id, std::move(done));
}

void LocalMailbox::ApplyDurable(const std::vector<engine::Op>& ops, ApplyDone done) {
  impl_->ApplyDurable(ops, std::move(done));
}

void LocalMailbox::Apply(const engine::Op& op, const std::string& body, ApplyDone done) {
  impl_->Apply(op, body, std::move(done));
}

}  // namespace mobilesync::agent
