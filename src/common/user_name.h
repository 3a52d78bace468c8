// Validation of user names that arrive from outside (command lines, the
// control socket, protocol frames, attribute values).
#ifndef MOBILESYNC_COMMON_USER_NAME_H_
#define MOBILESYNC_COMMON_USER_NAME_H_

#include <string_view>

#include "common/status.h"

namespace mobilesync {

constexpr size_t kMaxUserNameLength = 255;

// A user name is 1..255 bytes of printable ASCII or UTF-8 without spaces,
// control characters, '*' (Dovecot's master-user separator), '/' or '\\'.
[[nodiscard]] Status ValidateUserName(std::string_view user);

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_USER_NAME_H_
