// ConfigFile: the `key = value` configuration format of every mobilesync
// daemon.
//
// Format (one setting per line):
//   # comment            blank lines and lines starting with '#' are ignored
//   key = value          key: [a-z0-9_]+; value: the rest of the line, trimmed;
//                        a value may be wrapped in double quotes to keep
//                        leading/trailing spaces or a '#'.
// A key may appear once. Lines are at most kMaxLineLength bytes and the file at
// most kMaxFileSize bytes. Every error names FILE:LINE.
//
// Typed getters validate a value and record which keys were consumed, so that
// CheckAllUsed() can reject unknown (usually misspelt) keys.
#ifndef MOBILESYNC_COMMON_CONFIG_FILE_H_
#define MOBILESYNC_COMMON_CONFIG_FILE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mobilesync {

class ConfigFile {
 public:
  static constexpr size_t kMaxLineLength = 4096;
  static constexpr size_t kMaxFileSize = 1 << 20;

  // Reads and parses `path`. On failure returns non-OK naming path:line.
  [[nodiscard]] static Status Load(const std::string& path, ConfigFile* out);
  // Parses text that came from `origin` (used in error messages).
  [[nodiscard]] static Status Parse(std::string_view text,
                                    const std::string& origin,
                                    ConfigFile* out);

  bool Has(const std::string& key) const { return values_.count(key) != 0; }

  // Each getter leaves *out untouched (the default) when the key is absent.
  [[nodiscard]] Status GetString(const std::string& key, std::string* out);
  [[nodiscard]] Status GetUint(const std::string& key, uint64_t min,
                               uint64_t max, uint64_t* out);
  [[nodiscard]] Status GetBool(const std::string& key, bool* out);
  // A duration: a number with an optional unit ms, s, m, h (default s).
  // *out_ms is in milliseconds.
  [[nodiscard]] Status GetDuration(const std::string& key, uint64_t min_ms,
                                   uint64_t max_ms, uint64_t* out_ms);
  // A "host:port" or "[v6]:port" value.
  [[nodiscard]] Status GetHostPort(const std::string& key, std::string* host,
                                   uint16_t* port);
  // Marks a required key: NotFound naming the file when absent.
  [[nodiscard]] Status Require(const std::string& key) const;

  // InvalidArgument naming the first key no getter asked for.
  [[nodiscard]] Status CheckAllUsed() const;

  const std::string& origin() const { return origin_; }

 private:
  struct Entry {
    std::string value;
    int line = 0;
  };
  Status ValueError(const std::string& key, const std::string& what) const;

  std::string origin_;
  std::map<std::string, Entry> values_;
  std::set<std::string> used_;
};

}  // namespace mobilesync

#endif  // MOBILESYNC_COMMON_CONFIG_FILE_H_
