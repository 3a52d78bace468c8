// libFuzzer target: the ESEARCH set reader must refuse or accept any text
// without crashing, stay within its bound, and accept only ascending UIDs
// that the writer gives back as the same text's meaning.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "sync_agent/imap/uid_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mobilesync::agent::imap::ParseUidSet;
  using mobilesync::agent::imap::UidSet;
  if (size == 0) return 0;
  const size_t max = static_cast<size_t>(data[0]) * 16 + 1;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<uint64_t> uids;
  if (!ParseUidSet(in, max, &uids)) return 0;
  if (uids.empty() || uids.size() > max) abort();
  for (size_t i = 0; i < uids.size(); ++i) {
    if (uids[i] == 0 || uids[i] > UINT32_MAX || (i > 0 && uids[i] <= uids[i - 1])) abort();
  }
  std::vector<uint64_t> again;
  if (!ParseUidSet(UidSet(uids), max, &again) || again != uids) abort();
  return 0;
}
