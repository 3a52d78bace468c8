#include "common/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace mobilesync {
namespace {

Status CheckStat(const std::string& path, const struct stat& st,
                 bool allow_group_read) {
  if (!S_ISREG(st.st_mode)) {
    return Status::PermissionDenied(path, "secret is not a regular file");
  }
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    return Status::PermissionDenied(
        path, "secret file must be owned by root or by the service user");
  }
  mode_t forbidden = allow_group_read ? (S_IWGRP | S_IXGRP | S_IRWXO) : 077;
  if ((st.st_mode & forbidden) != 0) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::PermissionDenied(
        path, std::string("secret file has mode ") + mode +
                  (allow_group_read ? "; use chmod 0640 or tighter"
                                    : "; use chmod 0600"));
  }
  return Status::OK();
}

}  // namespace

Status CheckSecretFileMode(const std::string& path, bool allow_group_read) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return Status::FromErrno("cannot stat secret file " + path, errno);
  }
  return CheckStat(path, st, allow_group_read);
}

Status ReadSecretFile(const std::string& path, size_t max_size,
                      std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::FromErrno("cannot open secret file " + path, errno);
  struct stat st;
  Status s;
  if (fstat(fd, &st) != 0) {
    s = Status::FromErrno("cannot stat secret file " + path, errno);
  } else {
    s = CheckStat(path, st, false);
  }
  std::string data;
  if (s.ok() && static_cast<uint64_t>(st.st_size) > max_size) {
    s = Status::InvalidArgument(path, "secret file is larger than " +
                                          std::to_string(max_size) + " bytes");
  }
  if (s.ok()) {
    data.resize(max_size + 1);
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n = read(fd, &data[got], data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        s = Status::FromErrno("cannot read secret file " + path, errno);
        break;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    data.resize(got);
  }
  close(fd);
  if (!s.ok()) return s;
  if (data.size() > max_size) {
    return Status::InvalidArgument(path, "secret file is too large");
  }
  if (!data.empty() && data.back() == '\n') data.pop_back();
  if (!data.empty() && data.back() == '\r') data.pop_back();
  if (data.empty()) return Status::InvalidArgument(path, "secret file is empty");
  *out = std::move(data);
  return Status::OK();
}

}  // namespace mobilesync
