// Status: the result of an operation that may fail, modelled on LevelDB's.
//
// Success costs nothing but a null pointer. Errors carry a code and a
// two-part message ("what failed", "about what"). Nothing in mobilesync
// throws across a module boundary: functions return Status instead.
#ifndef MOBILESYNC_COMMON_STATUS_H_
#define MOBILESYNC_COMMON_STATUS_H_

#include <memory>
#include <string>
#include <string_view>

namespace mobilesync {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kCorruption,
    kInvalidArgument,
    kIOError,
    kTimeout,
    kPermissionDenied,
    kUnavailable,
    kAborted,
  };

  Status() = default;
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg, std::string_view msg2 = {}) {
    return Status(Code::kNotFound, msg, msg2);
  }
  static Status Corruption(std::string_view msg, std::string_view msg2 = {}) {
    return Status(Code::kCorruption, msg, msg2);
  }
  static Status InvalidArgument(std::string_view msg,
                                std::string_view msg2 = {}) {
    return Status(Code::kInvalidArgument, msg, msg2);
  }
  static Status IOError(std::string_view msg, std::string_view msg2 = {}) {
    return Status(Code::kIOError, msg, msg2);
  }
  static Status Timeout(std::string_view msg, std::string_view msg2 = {}) {
    return Status(Code::kTimeout, msg, msg2);
  }
  static Status PermissionDenied(std::string_view msg,
                                 std::string_view msg2 = {}) {
    return Status(Code::kPermissionDenied, msg, msg2);
  }
  static Status Unavailable(std::string_view msg, std::string_view msg2 = {}) {
    return Status(Code::kUnavailable, msg, msg2);
  }
  static Status Aborted(std::string_view msg, std::string_view msg2 = {}) {
    return Status(Code::kAborted, msg, msg2);
  }
  // An I/O error built from errno: "<what>: <strerror(err)>".
  static Status FromErrno(std::string_view what, int err);

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsCorruption() const { return code() == Code::kCorruption; }
  bool IsInvalidArgument() const { return code() == Code::kInvalidArgument; }
  bool IsIOError() const { return code() == Code::kIOError; }
  bool IsTimeout() const { return code() == Code::kTimeout; }
  bool IsPermissionDenied() const {
    return code() == Code::kPermissionDenied;
  }
  bool IsUnavailable() const { return code() == Code::kUnavailable; }

  // The message alone, without the code name ("" when ok).
  const std::string& message() const;
  // "OK" or "<Code>: <message>".
  std::string ToString() const;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  Status(Code code, std::string_view msg, std::string_view msg2);

  std::unique_ptr<Rep> rep_;
};

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_STATUS_H_
