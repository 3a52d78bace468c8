#include "common/config_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mobilesync {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool ValidKey(std::string_view key) {
  if (key.empty() || key.size() > 64) return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

// Parses an unsigned decimal number without sign, spaces or overflow.
bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace

Status ConfigFile::Load(const std::string& path, ConfigFile* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno("cannot open config file " + path, errno);
  std::string text;
  text.resize(kMaxFileSize + 1);
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileSize) {
    return Status::InvalidArgument(path, "config file larger than 1 MiB");
  }
  return Parse(text, path, out);
}

Status ConfigFile::Parse(std::string_view text, const std::string& origin,
                         ConfigFile* out) {
  ConfigFile cfg;
  cfg.origin_ = origin;
  int lineno = 0;
  while (!text.empty()) {
    ++lineno;
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::string where = origin + ":" + std::to_string(lineno);
    if (raw.size() > kMaxLineLength) {
      return Status::InvalidArgument(where, "line longer than 4096 bytes");
    }
    if (raw.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument(where, "NUL byte in line");
    }
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(where, "expected 'key = value'");
    }
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (!ValidKey(key)) {
      return Status::InvalidArgument(
          where, "bad key '" + std::string(key.substr(0, 64)) +
                     "' (lower-case letters, digits and '_')");
    }
    if (!value.empty() && value.front() == '"') {
      if (value.size() < 2 || value.back() != '"') {
        return Status::InvalidArgument(where, "unterminated quoted value");
      }
      value = value.substr(1, value.size() - 2);
    } else if (size_t hash = value.find(" #"); hash != std::string_view::npos) {
      value = Trim(value.substr(0, hash));
    }
    std::string k(key);
    if (cfg.values_.count(k)) {
      return Status::InvalidArgument(
          where, "'" + k + "' already set on line " +
                     std::to_string(cfg.values_[k].line));
    }
    cfg.values_[k] = Entry{std::string(value), lineno};
  }
  *out = std::move(cfg);
  return Status::OK();
}

Status ConfigFile::ValueError(const std::string& key,
                              const std::string& what) const {
  const Entry& e = values_.at(key);
  std::string shown = e.value.substr(0, 64);
  return Status::InvalidArgument(
      origin_ + ":" + std::to_string(e.line),
      key + ": " + what + " (got '" + shown + "')");
}

Status ConfigFile::GetString(const std::string& key, std::string* out) {
  auto it = values_.find(key);
  if (it == values_.end()) return Status::OK();
  used_.insert(key);
  *out = it->second.value;
  return Status::OK();
}

Status ConfigFile::GetUint(const std::string& key, uint64_t min, uint64_t max,
                           uint64_t* out) {
  auto it = values_.find(key);
  if (it == values_.end()) return Status::OK();
  used_.insert(key);
  uint64_t v;
  if (!ParseUint(it->second.value, &v) || v < min || v > max) {
    return ValueError(key, "expected a whole number from " +
                               std::to_string(min) + " to " +
                               std::to_string(max));
  }
  *out = v;
  return Status::OK();
}

Status ConfigFile::GetBool(const std::string& key, bool* out) {
  auto it = values_.find(key);
  if (it == values_.end()) return Status::OK();
  used_.insert(key);
  const std::string& v = it->second.value;
  if (v == "yes" || v == "true") {
    *out = true;
  } else if (v == "no" || v == "false") {
    *out = false;
  } else {
    return ValueError(key, "expected yes or no");
  }
  return Status::OK();
}

Status ConfigFile::GetDuration(const std::string& key, uint64_t min_ms,
                               uint64_t max_ms, uint64_t* out_ms) {
  auto it = values_.find(key);
  if (it == values_.end()) return Status::OK();
  used_.insert(key);
  std::string_view v = it->second.value;
  size_t digits = 0;
  while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
  std::string_view unit = Trim(v.substr(digits));
  uint64_t n, mult;
  if (unit == "ms") {
    mult = 1;
  } else if (unit.empty() || unit == "s") {
    mult = 1000;
  } else if (unit == "m" || unit == "min") {
    mult = 60 * 1000;
  } else if (unit == "h") {
    mult = 3600 * 1000;
  } else {
    mult = 0;
  }
  if (mult == 0 || !ParseUint(v.substr(0, digits), &n) ||
      n > UINT64_MAX / mult || n * mult < min_ms || n * mult > max_ms) {
    return ValueError(key, "expected a duration (e.g. 30s, 500ms, 5m) from " +
                               std::to_string(min_ms) + "ms to " +
                               std::to_string(max_ms) + "ms");
  }
  *out_ms = n * mult;
  return Status::OK();
}

Status ConfigFile::GetHostPort(const std::string& key, std::string* host,
                               uint16_t* port) {
  auto it = values_.find(key);
  if (it == values_.end()) return Status::OK();
  used_.insert(key);
  const std::string& v = it->second.value;
  std::string h;
  std::string p;
  if (!v.empty() && v[0] == '[') {
    size_t close = v.find(']');
    if (close == std::string::npos || close + 1 >= v.size() ||
        v[close + 1] != ':') {
      return ValueError(key, "expected [ipv6]:port");
    }
    h = v.substr(1, close - 1);
    p = v.substr(close + 2);
  } else {
    size_t colon = v.rfind(':');
    if (colon == std::string::npos) return ValueError(key, "expected host:port");
    h = v.substr(0, colon);
    p = v.substr(colon + 1);
  }
  uint64_t n;
  if (h.empty() || h.size() > 253 || !ParseUint(p, &n) || n == 0 ||
      n > 65535) {
    return ValueError(key, "expected host:port with a port from 1 to 65535");
  }
  *host = h;
  *port = static_cast<uint16_t>(n);
  return Status::OK();
}

Status ConfigFile::Require(const std::string& key) const {
  if (Has(key)) return Status::OK();
  return Status::NotFound(origin_, "required setting '" + key + "' is missing");
}

Status ConfigFile::CheckAllUsed() const {
  for (const auto& [key, entry] : values_) {
    if (!used_.count(key)) {
      return Status::InvalidArgument(origin_ + ":" + std::to_string(entry.line),
                                     "unknown setting '" + key + "'");
    }
  }
  return Status::OK();
}

}  // namespace mobilesync
