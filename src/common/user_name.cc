#include "common/user_name.h"

#include <string>

namespace mobilesync {

Status ValidateUserName(std::string_view user) {
  if (user.empty()) return Status::InvalidArgument("empty user name");
  if (user.size() > kMaxUserNameLength) {
    return Status::InvalidArgument("user name longer than 255 bytes");
  }
  for (unsigned char c : user) {
    if (c <= 0x20 || c == 0x7f || c == '*' || c == '/' || c == '\\' ||
        c == '"') {
      return Status::InvalidArgument(
          "user name contains a space, control character or one of * / \\ \"");
    }
  }
  return Status::OK();
}

}  // namespace mobilesync
