#include "sync_server/provisioning.h"

#include <fstream>
#include <sstream>

#include "common/secret_file.h"
#include "common/user_name.h"
#include "sync_server/crypto_util.h"

namespace mobilesync::server {
namespace {

constexpr size_t kMaxProvisioningFile = 4 << 20;

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// Calls fn(words, "origin:line") for each non-comment line.
template <typename Fn>
Status ForEachLine(std::string_view text, const std::string& origin, Fn fn) {
  int lineno = 0;
  while (!text.empty()) {
    ++lineno;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::string where = origin + ":" + std::to_string(lineno);
    if (line.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument(where, "NUL byte in line");
    }
    std::vector<std::string> words = Words(line);
    if (words.empty() || words[0][0] == '#') continue;
    Status s = fn(words, where);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status ReadProvisioningFile(const std::string& path, std::string* text) {
  // Secret files: the mode check is the same as for keys (0640 at most).
  Status s = CheckSecretFileMode(path, true);
  if (!s.ok()) return s;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  *text = buf.str();
  if (text->size() > kMaxProvisioningFile) {
    return Status::InvalidArgument(path, "file larger than 4 MiB");
  }
  return Status::OK();
}

Status CheckTokenHash(const std::string& value, const std::string& where) {
  if (!IsLowerHex(value, 64)) {
    return Status::InvalidArgument(where, "token_sha256 must be 64 lower-case hex digits");
  }
  return Status::OK();
}

}  // namespace

Status ParseKeyValues(const std::vector<std::string>& words, size_t first,
                      const std::string& where, std::map<std::string, std::string>* out) {
  for (size_t i = first; i < words.size(); ++i) {
    size_t eq = words[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(where, "expected key=value, got '" +
                                                words[i].substr(0, 64) + "'");
    }
    std::string key = words[i].substr(0, eq);
    if (!out->emplace(key, words[i].substr(eq + 1)).second) {
      return Status::InvalidArgument(where, "'" + key + "' given twice");
    }
  }
  return Status::OK();
}

Status AgentDirectory::Parse(std::string_view text, const std::string& origin,
                             AgentDirectory* out) {
  AgentDirectory dir;
  std::set<std::string> names;
  Status s = ForEachLine(text, origin, [&](const std::vector<std::string>& w,
                                           const std::string& where) {
    AgentEntry e;
    e.name = w[0];
    if (!names.insert(e.name).second) {
      return Status::InvalidArgument(where, "agent '" + e.name + "' defined twice");
    }
    std::map<std::string, std::string> kv;
    Status st = ParseKeyValues(w, 1, where, &kv);
    if (!st.ok()) return st;
    for (const auto& [k, v] : kv) {
      if (k == "cert_cn") {
        e.cert_cn = v;
      } else if (k == "token_sha256") {
        st = CheckTokenHash(v, where);
        if (!st.ok()) return st;
        e.token_sha256 = v;
      } else if (k == "users") {
        if (v == "*") {
          e.all_users = true;
          continue;
        }
        size_t pos = 0;
        while (pos <= v.size()) {
          size_t comma = v.find(',', pos);
          std::string u = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
          if (u.size() > 2 && u[0] == '*' && u[1] == '@' && u.find('@', 2) == std::string::npos) {
            e.domains.push_back(u.substr(1));
            if (comma == std::string::npos) break;
            pos = comma + 1;
            continue;
          }
          if (!ValidateUserName(u).ok()) {
            return Status::InvalidArgument(where, "bad user name '" + u.substr(0, 64) + "'");
          }
          e.users.insert(u);
          if (comma == std::string::npos) break;
          pos = comma + 1;
        }
      } else {
        return Status::InvalidArgument(where, "unknown key '" + k.substr(0, 64) + "'");
      }
    }
    if (e.cert_cn.empty() && e.token_sha256.empty()) {
      return Status::InvalidArgument(where, "agent '" + e.name +
                                                "' needs cert_cn= and/or token_sha256=");
    }
    if (!e.all_users && e.users.empty() && e.domains.empty()) {
      return Status::InvalidArgument(where, "agent '" + e.name + "' needs users=");
    }
    dir.agents_.push_back(std::move(e));
    return Status::OK();
  });
  if (!s.ok()) return s;
  *out = std::move(dir);
  return Status::OK();
}

Status AgentDirectory::Load(const std::string& path, AgentDirectory* out) {
  std::string text;
  Status s = ReadProvisioningFile(path, &text);
  if (s.ok()) s = Parse(text, path, out);
  return s;
}

bool AgentEntry::Allows(const std::string& user) const {
  if (all_users || users.count(user) != 0) return true;
  for (const std::string& d : domains) {
    if (user.size() > d.size() && user.compare(user.size() - d.size(), d.size(), d) == 0) {
      return true;
    }
  }
  return false;
}

const AgentEntry* AgentDirectory::Authenticate(const std::vector<std::string>& cert_names,
                                               std::string_view token) const {
  std::string token_hash = token.empty() ? std::string() : Sha256Hex(token);
  for (const AgentEntry& e : agents_) {
    if (!e.cert_cn.empty()) {
      bool match = false;
      for (const std::string& n : cert_names) match = match || n == e.cert_cn;
      if (!match) continue;
    }
    if (!e.token_sha256.empty() &&
        (token_hash.empty() || !ConstantTimeEquals(token_hash, e.token_sha256))) {
      continue;
    }
    return &e;
  }
  return nullptr;
}

Status DeviceDirectory::Parse(std::string_view text, const std::string& origin,
                              DeviceDirectory* out) {
  DeviceDirectory dir;
  Status s = ForEachLine(text, origin, [&](const std::vector<std::string>& w,
                                           const std::string& where) {
    DeviceUser u;
    u.user = w[0];
    if (!ValidateUserName(u.user).ok()) {
      return Status::InvalidArgument(where, "bad user name '" + u.user.substr(0, 64) + "'");
    }
    std::map<std::string, std::string> kv;
    Status st = ParseKeyValues(w, 1, where, &kv);
    if (!st.ok()) return st;
    std::string token;
    for (const auto& [k, v] : kv) {
      if (k == "token_sha256") {
        st = CheckTokenHash(v, where);
        if (!st.ok()) return st;
        token = v;
      } else if (k == "address") {
        if (v.find('@') == std::string::npos || v.size() > 254 ||
            v.find_first_of("<>\",;") != std::string::npos) {
          return Status::InvalidArgument(where, "bad address '" + v.substr(0, 64) + "'");
        }
        u.address = v;
      } else if (k == "window") {
        char* end = nullptr;
        unsigned long n = strtoul(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < 1 || n > 1000000) {
          return Status::InvalidArgument(where, "window must be 1..1000000");
        }
        u.window = static_cast<uint32_t>(n);
      } else {
        return Status::InvalidArgument(where, "unknown key '" + k.substr(0, 64) + "'");
      }
    }
    if (token.empty()) return Status::InvalidArgument(where, "device needs token_sha256=");
    for (const auto& t : dir.tokens_) {
      if (t.first == token) return Status::InvalidArgument(where, "token used twice");
    }
    if (u.address.empty() && u.user.find('@') != std::string::npos) u.address = u.user;
    auto it = dir.users_.find(u.user);
    if (it != dir.users_.end() &&
        (it->second.address != u.address || it->second.window != u.window)) {
      return Status::InvalidArgument(where, "address/window differ from an earlier device of '" +
                                                u.user + "'");
    }
    dir.tokens_.emplace_back(token, u.user);
    dir.users_[u.user] = u;
    return Status::OK();
  });
  if (!s.ok()) return s;
  *out = std::move(dir);
  return Status::OK();
}

Status DeviceDirectory::Load(const std::string& path, DeviceDirectory* out) {
  std::string text;
  Status s = ReadProvisioningFile(path, &text);
  if (s.ok()) s = Parse(text, path, out);
  return s;
}

const DeviceUser* DeviceDirectory::Authenticate(std::string_view token) const {
  if (token.empty()) return nullptr;
  std::string hash = Sha256Hex(token);
  const DeviceUser* found = nullptr;
  // Compare with every entry so the time does not depend on which matched.
  for (const auto& t : tokens_) {
    if (ConstantTimeEquals(hash, t.first) && found == nullptr) found = &users_.at(t.second);
  }
  return found;
}

const DeviceUser* DeviceDirectory::Find(const std::string& user) const {
  auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

}  // namespace mobilesync::server
