// Reading secrets (keys, passwords, shared HMAC secrets) from files.
//
// A secret file must be a regular file owned by root or by the reading user,
// with no permission bits for group or others (mode 0600 or 0400), so that a
// secret never leaks through a careless chmod. The content is never logged.
#ifndef MOBILESYNC_COMMON_SECRET_FILE_H_
#define MOBILESYNC_COMMON_SECRET_FILE_H_

#include <string>

#include "common/status.h"

namespace mobilesync {

// Checks owner and mode of `path` without reading it (for files another
// library opens, such as a TLS private key). `allow_group_read` permits 0640
// (e.g. a key shared with a service group).
[[nodiscard]] Status CheckSecretFileMode(const std::string& path,
                                         bool allow_group_read = false);

// Checks the mode, then reads at most max_size bytes, stripping one trailing
// newline. An empty secret is an error.
[[nodiscard]] Status ReadSecretFile(const std::string& path, size_t max_size,
                                    std::string* out);

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_SECRET_FILE_H_
