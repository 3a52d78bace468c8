#include "common/status.h"

#include <cstring>

namespace mobilesync {

Status::Status(Code code, std::string_view msg, std::string_view msg2)
    : rep_(std::make_unique<Rep>()) {
  rep_->code = code;
  rep_->message.assign(msg);
  if (!msg2.empty()) {
    rep_->message.append(": ");
    rep_->message.append(msg2);
  }
}

Status::Status(const Status& other)
    : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) {
    rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
  }
  return *this;
}

Status Status::FromErrno(std::string_view what, int err) {
  return Status(Code::kIOError, what, std::strerror(err));
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (!rep_) return "OK";
  const char* name = "Unknown";
  switch (rep_->code) {
    case Code::kOk: name = "OK"; break;
    case Code::kNotFound: name = "NotFound"; break;
    case Code::kCorruption: name = "Corruption"; break;
    case Code::kInvalidArgument: name = "Invalid argument"; break;
    case Code::kIOError: name = "IO error"; break;
    case Code::kTimeout: name = "Timeout"; break;
    case Code::kPermissionDenied: name = "Permission denied"; break;
    case Code::kUnavailable: name = "Unavailable"; break;
    case Code::kAborted: name = "Aborted"; break;
  }
  return std::string(name) + ": " + rep_->message;
}

}  // namespace mobilesync
