#include "sync_agent/listing_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "plugin/action_record.h"
#include "sync_agent/attribute_fields.h"

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

uint64_t Fnv1a(std::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Hex16(uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Splits off the next space-separated field of `line`.
std::string_view NextField(std::string_view* line) {
  size_t sp = line->find(' ');
  std::string_view f = line->substr(0, sp);
  line->remove_prefix(sp == std::string_view::npos ? line->size() : sp + 1);
  return f;
}

bool ParseI64(std::string_view s, int64_t* out) {
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  uint64_t v = 0;
  if (!ParseU64(s, &v) || v > static_cast<uint64_t>(INT64_MAX)) return false;
  if (neg && v == 0) return false;  // "-0" is not canonical
  *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

bool NamedField(std::string_view* line, std::string_view name, std::string_view* value) {
  std::string_view f = NextField(line);
  if (f.size() <= name.size() || f.substr(0, name.size()) != name || f[name.size()] != '=')
    return false;
  *value = f.substr(name.size() + 1);
  return true;
}

bool NamedU64(std::string_view* line, std::string_view name, uint64_t* out) {
  std::string_view v;
  return NamedField(line, name, &v) && ParseU64(v, out);
}

bool NamedI64(std::string_view* line, std::string_view name, int64_t* out) {
  std::string_view v;
  return NamedField(line, name, &v) && ParseI64(v, out);
}

bool NamedText(std::string_view* line, std::string_view name, std::string* out) {
  std::string_view v;
  return NamedField(line, name, &v) && plugin::PercentDecode(v, out);
}

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
  out += "end " + Hex16(Fnv1a(out)) + "\n";
  return out;
}

Status DecodeListing(std::string_view data, BoxListing* out) {
  *out = BoxListing();
  if (data.size() > kMaxListingFileBytes) return Damaged("too large");
  // The trailer first: a file cut anywhere, or changed anywhere, fails here.
  if (data.size() < 22 || data.back() != '\n') return Damaged("no trailer");
  const size_t trailer = data.rfind('\n', data.size() - 2) + 1;  // npos + 1 == 0
  std::string_view end = data.substr(trailer, data.size() - 1 - trailer);
  if (end.size() != 20 || end.substr(0, 4) != "end " ||
      end.substr(4) != Hex16(Fnv1a(data.substr(0, trailer))))
    return Damaged("bad checksum");
  std::string_view body = data.substr(0, trailer);

  size_t nl = body.find('\n');
  std::string_view header = body.substr(0, nl);
  body.remove_prefix(nl + 1);
  if (header.substr(0, kMagic.size()) != kMagic) return Damaged("not a listing");
  header.remove_prefix(kMagic.size());
  uint64_t uv = 0, count = 0;
  BoxListing l;
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
  std::string key = user;
  key += '\0';
  key += box;
  return dir + "/" + Hex16(Fnv1a(key)) + ".listing";
}

Status ReadListing(const std::string& path, const std::string& user, const std::string& box,
                   BoxListing* out) {
  *out = BoxListing();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no listing", path);
    return Status::IOError("open " + path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) > kMaxListingFileBytes) {
    close(fd);
    return Damaged("not a regular file of at most 256 MiB");
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = read(fd, &data[got], data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  data.resize(got);
  BoxListing l;
  Status s = DecodeListing(data, &l);
  if (!s.ok()) return s;
  if (l.user != user || l.box != box) return Damaged("of another user or mailbox");
  *out = std::move(l);
  return Status::OK();
}

Status WriteListing(const std::string& path, const BoxListing& listing) {
  const std::string data = EncodeListing(listing);
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::IOError("create " + tmp, strerror(errno));
  size_t put = 0;
  while (put < data.size()) {
    ssize_t n = write(fd, data.data() + put, data.size() - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? strerror(errno) : "short write";
      close(fd);
      unlink(tmp.c_str());
      return Status::IOError("write " + tmp, why);
    }
    put += static_cast<size_t>(n);
  }
  if (close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = strerror(errno);
    unlink(tmp.c_str());
    return Status::IOError("replace " + path, why);
  }
  return Status::OK();
}

Status RemoveListing(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::IOError("remove " + path, strerror(errno));
  return Status::OK();
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
    if (!ends_with(name, ".listing") && !ends_with(name, ".listing.tmp")) continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (ends_with(name, ".listing") && now_s - st.st_mtime < kMaxListingAgeS) continue;
    if (unlink(path.c_str()) == 0) ++removed;
  }
  closedir(d);
  return removed;
}

}  // namespace mobilesync::agent
