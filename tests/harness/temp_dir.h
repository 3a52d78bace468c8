// A temporary directory removed (recursively) when the object dies, unless
// MS_KEEP_TMP=1 is set in the environment (for looking at a failed run).
// Paths are short (/tmp/ms.XXXXXX): UNIX socket paths are limited to 107
// bytes and Dovecot puts several levels below its base_dir.
#ifndef MOBILESYNC_TESTS_HARNESS_TEMP_DIR_H_
#define MOBILESYNC_TESTS_HARNESS_TEMP_DIR_H_

#include <string>

#include "common/status.h"

namespace mobilesync::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `content` to `path` with `mode`, replacing it.
[[nodiscard]] Status WriteFile(const std::string& path, const std::string& content,
                               int mode = 0644);
// Reads the whole file (empty string and NotFound if absent).
[[nodiscard]] Status ReadFile(const std::string& path, std::string* out);
// mkdir -p with `mode`.
[[nodiscard]] Status MakeDirs(const std::string& path, int mode = 0755);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_TEMP_DIR_H_
