#include "sync_agent/id_map_cache.h"

#include <utility>

#include "plugin/action_record.h"
#include "sync_agent/cache_file.h"

namespace mobilesync::agent {

// The file, all text, one line each:
//   mobilesync-idmap v1 read=<unix s> count=<n> user=<pct> stamp=<pct>
//   <key> <pct value>      (count lines, keys ascending and unique)
//   end <FNV-1a 64 of every byte before this line, 16 hex digits>
// <pct> is the plugin's percent-encoding (no space, no '=' left); a key is
// [0-9-] only.

namespace {

constexpr std::string_view kMagic = "mobilesync-idmap v1 ";

Status Damaged(std::string_view what) {
  return Status::Corruption("damaged id map cache", what);
}

bool IsKey(std::string_view k) {
  if (k.empty() || k.size() > kMaxIdMapKeyBytes) return false;
  for (char c : k) {
    if ((c < '0' || c > '9') && c != '-') return false;
  }
  return true;
}

}  // namespace

std::string EncodeIdMap(const IdMapCache& c) {
  std::string out;
  out.reserve(96 + c.entries.size() * 96);
  out += kMagic;
  out += "read=" + std::to_string(c.read_s) + " count=" + std::to_string(c.entries.size()) +
         " user=" + plugin::PercentEncode(c.user) + " stamp=" + plugin::PercentEncode(c.stamp) +
         "\n";
  for (const auto& [key, value] : c.entries) {
    out += key;
    out += ' ';
    out += plugin::PercentEncode(value);
    out += '\n';
  }
  return cache_file::Seal(std::move(out));
}

Status DecodeIdMap(std::string_view data, IdMapCache* out) {
  *out = IdMapCache();
  if (data.size() > kMaxIdMapFileBytes) return Damaged("too large");
  std::string_view body;
  if (!cache_file::Unseal(data, &body)) return Damaged("bad checksum");
  size_t nl = body.find('\n');
  if (nl == std::string_view::npos) return Damaged("no header");
  std::string_view header = body.substr(0, nl);
  body.remove_prefix(nl + 1);
  if (header.substr(0, kMagic.size()) != kMagic) return Damaged("not an id map cache");
  header.remove_prefix(kMagic.size());
  IdMapCache c;
  uint64_t count = 0;
  if (!cache_file::NamedI64(&header, "read", &c.read_s) ||
      !cache_file::NamedU64(&header, "count", &count) || count > kMaxIdMapEntries ||
      !cache_file::NamedText(&header, "user", &c.user) ||
      !cache_file::NamedText(&header, "stamp", &c.stamp) || c.stamp.empty() ||
      c.stamp.size() > kMaxIdMapStampBytes || !header.empty())
    return Damaged("bad header");
  auto hint = c.entries.end();
  while (!body.empty()) {
    nl = body.find('\n');  // every line ends in one: Unseal saw the last
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl + 1);
    std::string_view key = cache_file::NextField(&line);
    std::string value;
    if (c.entries.size() == count || !IsKey(key) || line.find(' ') != std::string_view::npos ||
        !plugin::PercentDecode(line, &value) || value.empty() ||
        value.size() > kMaxIdMapValueBytes ||
        (!c.entries.empty() && std::string_view(c.entries.rbegin()->first) >= key))
      return Damaged("bad entry");
    hint = c.entries.emplace_hint(hint, std::string(key), std::move(value));
  }
  if (c.entries.size() != count) return Damaged("short");
  *out = std::move(c);
  return Status::OK();
}

bool IdMapUsable(const IdMapCache& c, const std::string& stamp, int64_t now_s) {
  return !stamp.empty() && c.stamp == stamp && c.read_s <= now_s + 60 &&
         now_s - c.read_s < kMaxIdMapAgeS;
}

std::string IdMapPath(const std::string& dir, const std::string& user) {
  return cache_file::Path(dir, user, "", ".idmap");
}

Status ReadIdMap(const std::string& path, const std::string& user, IdMapCache* out) {
  *out = IdMapCache();
  std::string data;
  Status s = cache_file::Read(path, kMaxIdMapFileBytes, &data);
  if (!s.ok()) return s;
  IdMapCache c;
  s = DecodeIdMap(data, &c);
  if (!s.ok()) return s;
  if (c.user != user) return Damaged("of another user");
  *out = std::move(c);
  return Status::OK();
}

Status WriteIdMap(const std::string& path, const IdMapCache& cache) {
  return cache_file::Replace(path, EncodeIdMap(cache));
}

}  // namespace mobilesync::agent
