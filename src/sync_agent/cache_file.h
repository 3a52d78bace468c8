// What the agent's caches in state_dir (the listing cache, the id map
// cache) share: a text file sealed with a checksum trailer, named by a hash
// of the user and what it holds, read bounded and replaced whole.
#ifndef MOBILESYNC_SYNC_AGENT_CACHE_FILE_H_
#define MOBILESYNC_SYNC_AGENT_CACHE_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mobilesync::agent::cache_file {

// `body` (lines, each ending in '\n') followed by the trailer line
// "end <FNV-1a 64 of body, 16 hex digits>\n".
std::string Seal(std::string body);
// The body of what Seal made; false for anything cut or changed.
bool Unseal(std::string_view data, std::string_view* body);

// dir/<16 hex digits of a hash of user and name><suffix>: a user name may
// hold any byte a file name may not; the file itself names its user, and a
// reader refuses another user's.
std::string Path(const std::string& dir, const std::string& user, const std::string& name,
                 std::string_view suffix);

// The whole file: NotFound when there is none; Corruption when it is not a
// regular file or over `max_bytes`; IOError when it cannot be read.
Status Read(const std::string& path, size_t max_bytes, std::string* out);
// Replaces the file whole (a temporary file "<path>.tmp", mode 0600,
// renamed over it): a crash leaves the old file or the new one. Not synced
// to disk: a cache lost with the page cache is a miss.
Status Replace(const std::string& path, std::string_view data);
Status Remove(const std::string& path);

// Fields of a "name=value name=value" header line, taken in order.
std::string_view NextField(std::string_view* line);
bool NamedU64(std::string_view* line, std::string_view name, uint64_t* out);
bool NamedI64(std::string_view* line, std::string_view name, int64_t* out);
bool NamedText(std::string_view* line, std::string_view name, std::string* out);  // percent-decoded
bool ParseI64(std::string_view s, int64_t* out);  // canonical decimal, optional '-'

}  // namespace mobilesync::agent::cache_file

#endif  // MOBILESYNC_SYNC_AGENT_CACHE_FILE_H_
