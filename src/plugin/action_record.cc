#include "plugin/action_record.h"

#include <cinttypes>
#include <cstdio>
#include <set>

namespace mobilesync::plugin {
namespace {

struct KindName {
  ActionKind kind;
  std::string_view name;
};
constexpr KindName kKindNames[] = {
    {ActionKind::kInsert, "insert"}, {ActionKind::kRead, "read"},
    {ActionKind::kUnread, "unread"}, {ActionKind::kTrash, "trash"},
    {ActionKind::kRestore, "restore"}, {ActionKind::kDestroy, "destroy"},
    {ActionKind::kSent, "sent"},     {ActionKind::kResync, "resync"},
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict unsigned decimal: no sign, no leading zeros (except "0"), no
// overflow of `max`.
bool ParseDecimal(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// Fixed-width lower-case hex.
bool ParseFixedHex(std::string_view s, size_t width, uint64_t* out) {
  if (s.size() != width) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    v = (v << 4) | static_cast<uint64_t>(HexValue(c));
  }
  *out = v;
  return true;
}

bool KindHasMessage(ActionKind k) { return k != ActionKind::kResync; }
bool KindHasSource(ActionKind k) {
  return k == ActionKind::kTrash || k == ActionKind::kRestore;
}

}  // namespace

std::string_view ActionKindName(ActionKind kind) {
  for (const auto& k : kKindNames) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

bool ParseActionKind(std::string_view name, ActionKind* out) {
  for (const auto& k : kKindNames) {
    if (k.name == name) {
      *out = k.kind;
      return true;
    }
  }
  return false;
}

bool ActionRecord::operator==(const ActionRecord& o) const {
  return kind == o.kind && box == o.box && uidvalidity == o.uidvalidity && uid == o.uid &&
         guid == o.guid && ts_us == o.ts_us && src_box == o.src_box &&
         src_uidvalidity == o.src_uidvalidity && src_uid == o.src_uid && reason == o.reason;
}

std::string PercentEncode(std::string_view in) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (c < 0x21 || c > 0x7e || c == '%' || c == '=') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool PercentDecode(std::string_view in, std::string* out) {
  std::string r;
  r.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\0') return false;
    if (c != '%') {
      r += c;
      continue;
    }
    if (i + 2 >= in.size()) return false;  // truncated escape
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    char d = static_cast<char>((hi << 4) | lo);
    if (d == '\0') return false;
    r += d;
    i += 2;
  }
  *out = std::move(r);
  return true;
}

Status ValidateActionRecord(const ActionRecord& r) {
  if (KindHasMessage(r.kind)) {
    if (r.box.empty()) return Status::Corruption("action without box");
    if (r.uidvalidity == 0) return Status::Corruption("action without uidvalidity");
    if (r.uid == 0) return Status::Corruption("action without uid");
  }
  if (KindHasSource(r.kind)) {
    if (r.src_box.empty() || r.src_uidvalidity == 0 || r.src_uid == 0) {
      return Status::Corruption("move action without its source",
                                std::string(ActionKindName(r.kind)));
    }
  }
  if (r.ts_us == 0) return Status::Corruption("action without ts");
  return Status::OK();
}

Status FormatActionValue(const ActionRecord& r, std::string* out) {
  Status s = ValidateActionRecord(r);
  if (!s.ok()) return Status::InvalidArgument("cannot format action", s.message());
  // v1 kind=.. box=.. uidvalidity=.. uid=.. guid=.. ts=.. [src_*] [reason]
  std::string v = "v1 kind=";
  v += ActionKindName(r.kind);
  // Required fields always; optional ones when set, so that formatting
  // what ParseActionValue accepted is lossless.
  const bool msg = KindHasMessage(r.kind);
  const bool src = KindHasSource(r.kind);
  if (msg || !r.box.empty()) v += " box=" + PercentEncode(r.box);
  if (msg || r.uidvalidity != 0) v += " uidvalidity=" + std::to_string(r.uidvalidity);
  if (msg || r.uid != 0) v += " uid=" + std::to_string(r.uid);
  if (msg || !r.guid.empty()) v += " guid=" + PercentEncode(r.guid);
  v += " ts=" + std::to_string(r.ts_us);
  if (src || !r.src_box.empty()) v += " src_box=" + PercentEncode(r.src_box);
  if (src || r.src_uidvalidity != 0) {
    v += " src_uidvalidity=" + std::to_string(r.src_uidvalidity);
  }
  if (src || r.src_uid != 0) v += " src_uid=" + std::to_string(r.src_uid);
  if (!r.reason.empty()) v += " reason=" + PercentEncode(r.reason);
  if (v.size() > kMaxActionValueLength) {
    return Status::InvalidArgument("action value too long", std::to_string(v.size()));
  }
  out->append(v);
  return Status::OK();
}

Status ParseActionValue(std::string_view value, ActionRecord* out) {
  if (value.size() > kMaxActionValueLength) return Status::Corruption("action value too long");
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return Status::Corruption("action value has a control byte");
  }
  constexpr std::string_view kMagic = "v1 ";
  if (value.substr(0, kMagic.size()) != kMagic) {
    return Status::Corruption("action value is not v1");
  }
  value.remove_prefix(kMagic.size());
  ActionRecord r;
  std::set<std::string_view> seen;
  bool have_kind = false, have_ts = false;
  while (!value.empty()) {
    size_t sp = value.find(' ');
    std::string_view field = value.substr(0, sp);
    value = sp == std::string_view::npos ? std::string_view() : value.substr(sp + 1);
    if (sp != std::string_view::npos && value.empty()) {
      return Status::Corruption("action value ends with a space");
    }
    size_t eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status::Corruption("action field is not name=value");
    }
    std::string_view name = field.substr(0, eq);
    std::string_view val = field.substr(eq + 1);
    if (!seen.insert(name).second) {
      return Status::Corruption("duplicate action field", std::string(name));
    }
    uint64_t n = 0;
    bool ok = true;
    if (name == "kind") {
      ok = ParseActionKind(val, &r.kind);
      have_kind = ok;
    } else if (name == "box") {
      ok = PercentDecode(val, &r.box);
    } else if (name == "guid") {
      ok = PercentDecode(val, &r.guid);
    } else if (name == "src_box") {
      ok = PercentDecode(val, &r.src_box);
    } else if (name == "reason") {
      ok = PercentDecode(val, &r.reason);
    } else if (name == "uidvalidity") {
      ok = ParseDecimal(val, UINT32_MAX, &n);
      r.uidvalidity = static_cast<uint32_t>(n);
    } else if (name == "uid") {
      ok = ParseDecimal(val, UINT32_MAX, &n);
      r.uid = static_cast<uint32_t>(n);
    } else if (name == "src_uidvalidity") {
      ok = ParseDecimal(val, UINT32_MAX, &n);
      r.src_uidvalidity = static_cast<uint32_t>(n);
    } else if (name == "src_uid") {
      ok = ParseDecimal(val, UINT32_MAX, &n);
      r.src_uid = static_cast<uint32_t>(n);
    } else if (name == "ts") {
      ok = ParseDecimal(val, UINT64_MAX, &r.ts_us);
      have_ts = ok;
    }
    // Any other name: a later v1 writer's optional field; ignored.
    if (!ok) return Status::Corruption("bad action field", std::string(name));
  }
  if (!have_kind) return Status::Corruption("action without kind");
  if (!have_ts) return Status::Corruption("action without ts");
  Status s = ValidateActionRecord(r);
  if (!s.ok()) return s;
  *out = std::move(r);
  return Status::OK();
}

std::string FormatActionKeyId(uint64_t ts_us, uint32_t pid, uint32_t counter) {
  char buf[kActionKeyIdLength + 1];
  snprintf(buf, sizeof buf, "%016" PRIx64 "-%08" PRIx32 "-%08" PRIx32, ts_us, pid, counter);
  return buf;
}

Status ParseActionKeyId(std::string_view id, uint64_t* ts_us, uint32_t* pid,
                        uint32_t* counter) {
  uint64_t t, p, c;
  if (id.size() != kActionKeyIdLength || id[16] != '-' || id[25] != '-' ||
      !ParseFixedHex(id.substr(0, 16), 16, &t) || !ParseFixedHex(id.substr(17, 8), 8, &p) ||
      !ParseFixedHex(id.substr(26, 8), 8, &c)) {
    return Status::Corruption("bad action key", std::string(id.substr(0, 64)));
  }
  *ts_us = t;
  *pid = static_cast<uint32_t>(p);
  *counter = static_cast<uint32_t>(c);
  return Status::OK();
}

}  // namespace mobilesync::plugin
