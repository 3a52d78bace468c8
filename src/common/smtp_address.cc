// IsPlainAddress lives apart from the SMTP client so that the device API's
// request parser (and its fuzz target) need no libevent.
#include "common/smtp_client.h"

namespace mobilesync {

bool IsPlainAddress(const std::string& a) {
  size_t at = a.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= a.size() || a.size() > 254) return false;
  if (a.find('@', at + 1) != std::string::npos) return false;
  for (unsigned char c : a) {
    if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == ',' || c == ';' ||
        c == '(' || c == ')' || c == '\\' || c == '[' || c == ']' || c == ':') {
      return false;
    }
  }
  return true;
}

}  // namespace mobilesync
