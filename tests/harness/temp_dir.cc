#include "harness/temp_dir.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mobilesync::testing {
namespace {

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  remove(path);
  return 0;
}

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/ms.XXXXXX";
  char* p = mkdtemp(tmpl);
  if (p == nullptr) abort();  // No temp dir: nothing a test could do.
  path_ = p;
  chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  const char* keep = getenv("MS_KEEP_TMP");
  if (keep != nullptr && std::string(keep) == "1") return;
  nftw(path_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS);
}

Status WriteFile(const std::string& path, const std::string& content, int mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  fchmod(fd, static_cast<mode_t>(mode));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return Status::FromErrno("write " + path, e);
    }
    off += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return Status::FromErrno("close " + path, errno);
  return Status::OK();
}

Status ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out->clear();
    return Status::NotFound("cannot open", path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return Status::OK();
}

Status MakeDirs(const std::string& path, int mode) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return Status::FromErrno("mkdir " + cur, errno);
    }
  }
  return Status::OK();
}

}  // namespace mobilesync::testing
