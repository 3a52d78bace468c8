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
  {
    mobilesync::agent::imap::UidRanges any;  // any text: no crash, no hang
    if (any.Parse(in)) (void)any.Contains(max);
  }
  std::vector<uint64_t> uids;
  if (!ParseUidSet(in, max, &uids)) return 0;
  if (uids.empty() || uids.size() > max) abort();
  for (size_t i = 0; i < uids.size(); ++i) {
    if (uids[i] == 0 || uids[i] > UINT32_MAX || (i > 0 && uids[i] <= uids[i - 1])) abort();
  }
  std::vector<uint64_t> again;
  if (!ParseUidSet(UidSet(uids), max, &again) || again != uids) abort();
  // What the set reader takes, the range matcher takes too, naming the
  // same UIDs (probed at and beside each).
  mobilesync::agent::imap::UidRanges ranges;
  if (!ranges.Parse(in)) abort();
  for (size_t i = 0; i < uids.size(); ++i) {
    if (!ranges.Contains(uids[i])) abort();
    const bool next_in = i + 1 < uids.size() && uids[i + 1] == uids[i] + 1;
    if (ranges.Contains(uids[i] + 1) != next_in) abort();
  }
  if (ranges.Contains(uids.front() - 1)) abort();
  return 0;
}
