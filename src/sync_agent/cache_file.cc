#include "sync_agent/cache_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "plugin/action_record.h"
#include "sync_agent/attribute_fields.h"

namespace mobilesync::agent::cache_file {
namespace {

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

bool NamedField(std::string_view* line, std::string_view name, std::string_view* value) {
  std::string_view f = NextField(line);
  if (f.size() <= name.size() || f.substr(0, name.size()) != name || f[name.size()] != '=')
    return false;
  *value = f.substr(name.size() + 1);
  return true;
}

}  // namespace

std::string Seal(std::string body) {
  const std::string sum = Hex16(Fnv1a(body));
  body += "end ";
  body += sum;
  body += '\n';
  return body;
}

bool Unseal(std::string_view data, std::string_view* body) {
  if (data.size() < 21 || data.back() != '\n') return false;
  const size_t trailer = data.rfind('\n', data.size() - 2) + 1;  // npos + 1 == 0
  std::string_view end = data.substr(trailer, data.size() - 1 - trailer);
  if (end.size() != 20 || end.substr(0, 4) != "end " ||
      end.substr(4) != Hex16(Fnv1a(data.substr(0, trailer))))
    return false;
  *body = data.substr(0, trailer);
  return true;
}

std::string Path(const std::string& dir, const std::string& user, const std::string& name,
                 std::string_view suffix) {
  std::string key = user;
  key += '\0';
  key += name;
  std::string out = dir + "/" + Hex16(Fnv1a(key));
  out += suffix;
  return out;
}

Status Read(const std::string& path, size_t max_bytes, std::string* out) {
  out->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no file", path);
    return Status::IOError("open " + path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) > max_bytes) {
    close(fd);
    return Status::Corruption("damaged cache file", "not a regular file within the size limit");
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
  *out = std::move(data);
  return Status::OK();
}

Status Replace(const std::string& path, std::string_view data) {
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

Status Remove(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::IOError("remove " + path, strerror(errno));
  return Status::OK();
}

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

}  // namespace mobilesync::agent::cache_file
