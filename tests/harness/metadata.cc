#include "harness/metadata.h"

#include <cstdlib>

namespace mobilesync::testing {
namespace {

// Reads one IMAP string (quoted, literal as "{N}\n<bytes>", or atom/NIL)
// at `*pos`. Sets *nil for NIL.
bool ReadString(const std::string& s, size_t* pos, std::string* out, bool* nil) {
  *nil = false;
  size_t p = *pos;
  if (p >= s.size()) return false;
  if (s[p] == '"') {
    std::string v;
    for (++p; p < s.size() && s[p] != '"'; ++p) {
      if (s[p] == '\\' && p + 1 < s.size()) ++p;
      v += s[p];
    }
    if (p >= s.size()) return false;
    *out = v;
    *pos = p + 1;
    return true;
  }
  if (s[p] == '{') {
    size_t close = s.find('}', p);
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != '\n') return false;
    size_t n = strtoul(s.c_str() + p + 1, nullptr, 10);
    if (close + 2 + n > s.size()) return false;
    *out = s.substr(close + 2, n);
    *pos = close + 2 + n;
    return true;
  }
  size_t end = s.find_first_of(" )", p);
  if (end == std::string::npos) end = s.size();
  *out = s.substr(p, end - p);
  *nil = *out == "NIL";
  *pos = end;
  return !out->empty();
}

}  // namespace

Status ParseMetadataResponse(const ImapResponse& response,
                             std::map<std::string, std::string>* out) {
  for (const auto& line : response.untagged) {
    if (line.rfind("METADATA ", 0) != 0) continue;
    size_t pos = 9;
    std::string box, key, value;
    bool nil;
    if (!ReadString(line, &pos, &box, &nil)) return Status::Corruption("METADATA mailbox", line);
    while (pos < line.size() && line[pos] == ' ') ++pos;
    if (pos >= line.size() || line[pos] != '(') return Status::Corruption("METADATA list", line);
    ++pos;
    while (pos < line.size() && line[pos] != ')') {
      if (!ReadString(line, &pos, &key, &nil)) return Status::Corruption("METADATA key", line);
      if (pos >= line.size() || line[pos] != ' ') return Status::Corruption("METADATA sep", line);
      ++pos;
      if (!ReadString(line, &pos, &value, &nil)) return Status::Corruption("METADATA value", line);
      if (!nil) (*out)[key] = value;
      if (pos < line.size() && line[pos] == ' ') ++pos;
    }
  }
  return Status::OK();
}

Status GetMetadata(ImapTestClient* imap, const std::string& mailbox, const std::string& entry,
                   std::map<std::string, std::string>* out) {
  ImapResponse r;
  Status s = imap->Command("GETMETADATA (DEPTH infinity) " + ImapQuote(mailbox) + " " + entry, &r);
  if (!s.ok()) return s;
  if (!r.ok()) return Status::IOError("GETMETADATA failed", r.tagged);
  out->clear();
  return ParseMetadataResponse(r, out);
}

}  // namespace mobilesync::testing
