#include "sync_agent/listing_cache.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "plugin/action_record.h"
#include "sync_agent/attribute_fields.h"
#include "sync_agent/cache_file.h"

namespace mobilesync::agent {

// The file, all text, one line each:
//   mobilesync-listing v1 uidvalidity=<u> modseq=<m> listed=<unix s> count=<n>
//     user=<pct> box=<pct>
//   <uid> <s|-><f|-> <date> <size> <pct guid> <-|=<pct message-id>>   (count lines,
//                                                                      UIDs ascending)
//   end <FNV-1a 64 of every byte before this line, 16 hex digits>
// <pct> is the plugin's percent-encoding (no space, no '=' left).

namespace {

constexpr std::string_view kMagic = "mobilesync-listing v1 ";

using cache_file::NextField;
using cache_file::ParseI64;

Status Damaged(std::string_view what) {
  return Status::Corruption("damaged listing", what);
}

bool ParseEntry(std::string_view line, uint32_t* uid, ListedMessage* m) {
  uint64_t u = 0;
  if (!ParseU64(NextField(&line), &u) || u == 0 || u > UINT32_MAX) return false;
  *uid = static_cast<uint32_t>(u);
  std::string_view flags = NextField(&line);
  if (flags.size() != 2 || (flags[0] != 's' && flags[0] != '-') ||
      (flags[1] != 'f' && flags[1] != '-'))
    return false;
  m->seen = flags[0] == 's';
  m->flagged = flags[1] == 'f';
  if (!ParseI64(NextField(&line), &m->date)) return false;
  if (!ParseU64(NextField(&line), &m->size)) return false;
  if (!plugin::PercentDecode(NextField(&line), &m->guid) || m->guid.size() > kMaxListedGuidBytes)
    return false;
  std::string_view id = NextField(&line);
  if (!line.empty() || id.empty()) return false;
  if (id == "-") {
    m->has_message_id = false;
    m->message_id.clear();
    return true;
  }
  if (id[0] != '=') return false;
  m->has_message_id = true;
  return plugin::PercentDecode(id.substr(1), &m->message_id) &&
         m->message_id.size() <= kMaxListedMessageIdBytes;
}

}  // namespace

bool ListedMessage::operator==(const ListedMessage& o) const {
  return seen == o.seen && flagged == o.flagged && date == o.date && size == o.size &&
         guid == o.guid && has_message_id == o.has_message_id && message_id == o.message_id;
}

std::string EncodeListing(const BoxListing& l) {
  std::string out;
  out.reserve(96 + l.messages.size() * 72);
  out += kMagic;
  out += "uidvalidity=" + std::to_string(l.uidvalidity) + " modseq=" + std::to_string(l.modseq) +
         " listed=" + std::to_string(l.listed_s) + " count=" + std::to_string(l.messages.size()) +
         " user=" + plugin::PercentEncode(l.user) + " box=" + plugin::PercentEncode(l.box) + "\n";
  for (const auto& [uid, m] : l.messages) {
    out += std::to_string(uid);
    out += m.seen ? " s" : " -";
    out += m.flagged ? "f " : "- ";
    out += std::to_string(m.date);
    out += ' ';
    out += std::to_string(m.size);
    out += ' ';
    out += plugin::PercentEncode(m.guid);
    out += m.has_message_id ? " =" + plugin::PercentEncode(m.message_id) : std::string(" -");
    out += '\n';
  }
  return cache_file::Seal(std::move(out));
}

Status DecodeListing(std::string_view data, BoxListing* out) {
  *out = BoxListing();
  if (data.size() > kMaxListingFileBytes) return Damaged("too large");
  // The trailer first: a file cut anywhere, or changed anywhere, fails here.
  std::string_view body;
  if (!cache_file::Unseal(data, &body)) return Damaged("bad checksum");

  size_t nl = body.find('\n');
  std::string_view header = body.substr(0, nl);
  body.remove_prefix(nl + 1);
  if (header.substr(0, kMagic.size()) != kMagic) return Damaged("not a listing");
  header.remove_prefix(kMagic.size());
  uint64_t uv = 0, count = 0;
  BoxListing l;
  using cache_file::NamedI64;
  using cache_file::NamedText;
  using cache_file::NamedU64;
  if (!NamedU64(&header, "uidvalidity", &uv) || uv == 0 || uv > UINT32_MAX ||
      !NamedU64(&header, "modseq", &l.modseq) || !NamedI64(&header, "listed", &l.listed_s) ||
      !NamedU64(&header, "count", &count) || count > kMaxListedMessages ||
      !NamedText(&header, "user", &l.user) || !NamedText(&header, "box", &l.box) || !header.empty())
    return Damaged("bad header");
  l.uidvalidity = static_cast<uint32_t>(uv);

  uint32_t last = 0;
  auto hint = l.messages.end();
  while (!body.empty()) {
    nl = body.find('\n');  // every line ends in one: the trailer check saw the last
    uint32_t uid = 0;
    ListedMessage m;
    if (l.messages.size() == count || !ParseEntry(body.substr(0, nl), &uid, &m) || uid <= last)
      return Damaged("bad entry");
    last = uid;
    hint = l.messages.emplace_hint(hint, uid, std::move(m));
    body.remove_prefix(nl + 1);
  }
  if (l.messages.size() != count) return Damaged("short");
  *out = std::move(l);
  return Status::OK();
}

bool UpdateListing(BoxListing* l, const std::vector<uint64_t>& present,
                   std::map<uint32_t, ListedMessage> changed, uint64_t modseq) {
  std::map<uint32_t, ListedMessage> now;
  auto hint = now.end();
  for (uint64_t u : present) {
    if (u == 0 || u > UINT32_MAX) return false;
    const uint32_t uid = static_cast<uint32_t>(u);
    auto c = changed.find(uid);
    auto old = l->messages.find(uid);
    if (c != changed.end()) {
      ListedMessage m = std::move(c->second);
      // What CHANGEDSINCE fetched says nothing of the Message-ID: a known
      // message keeps the one found before.
      if (!m.has_message_id && old != l->messages.end() && old->second.has_message_id) {
        m.has_message_id = true;
        m.message_id = old->second.message_id;
      }
      hint = now.emplace_hint(hint, uid, std::move(m));
    } else if (old != l->messages.end()) {
      hint = now.emplace_hint(hint, uid, std::move(old->second));
    } else {
      return false;
    }
  }
  l->messages = std::move(now);
  l->modseq = modseq;
  return true;
}

bool ListingUsable(const BoxListing& l, uint32_t uidvalidity, uint64_t highestmodseq,
                   int64_t now_s) {
  return uidvalidity != 0 && l.uidvalidity == uidvalidity && l.modseq != 0 && highestmodseq != 0 &&
         l.modseq <= highestmodseq && l.listed_s <= now_s + 60 &&
         now_s - l.listed_s < kMaxListingAgeS;
}

std::string ListingPath(const std::string& dir, const std::string& user, const std::string& box) {
  return cache_file::Path(dir, user, box, ".listing");
}

Status ReadListing(const std::string& path, const std::string& user, const std::string& box,
                   BoxListing* out) {
  *out = BoxListing();
  std::string data;
  Status s = cache_file::Read(path, kMaxListingFileBytes, &data);
  if (!s.ok()) return s;
  BoxListing l;
  s = DecodeListing(data, &l);
  if (!s.ok()) return s;
  if (l.user != user || l.box != box) return Damaged("of another user or mailbox");
  *out = std::move(l);
  return Status::OK();
}

Status WriteListing(const std::string& path, const BoxListing& listing) {
  return cache_file::Replace(path, EncodeListing(listing));
}

Status RemoveListing(const std::string& path) {
  return cache_file::Remove(path);
}

size_t RemoveStaleListings(const std::string& dir, int64_t now_s) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  size_t removed = 0;
  auto ends_with = [](const std::string& s, std::string_view tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    const bool cache = ends_with(name, ".listing") || ends_with(name, ".idmap");
    if (!cache && !ends_with(name, ".listing.tmp") && !ends_with(name, ".idmap.tmp")) continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    // An id map cache is only used within kMaxIdMapAgeS (== kMaxListingAgeS)
    // of its read, which its file's time is never before.
    if (cache && now_s - st.st_mtime < kMaxListingAgeS) continue;
    if (unlink(path.c_str()) == 0) ++removed;
  }
  closedir(d);
  return removed;
}

}  // namespace mobilesync::agent
