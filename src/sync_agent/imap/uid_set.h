// IMAP sequence sets of UIDs (RFC 3501 "sequence-set"), both ways: the
// agent writes them into UID FETCH / STORE / MOVE and reads them back from
// an ESEARCH "ALL" answer.
#ifndef MOBILESYNC_SYNC_AGENT_IMAP_UID_SET_H_
#define MOBILESYNC_SYNC_AGENT_IMAP_UID_SET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mobilesync::agent::imap {

// "1:5,7" from sorted or unsorted UIDs (duplicates dropped).
std::string UidSet(std::vector<uint64_t> uids);

// "1:5,7,9:10" -> 1 2 3 4 5 7 9 10 appended to *out. Only what a server
// writes for a set of UIDs it found: ranges low:high in ascending order,
// no overlap, no "*", UIDs 1..2^32-1, canonical decimal. False on anything
// else, or when *out would hold more than `max` UIDs (a hostile answer
// "1:4294967295" must not become four billion entries); *out is then
// unspecified.
bool ParseUidSet(std::string_view set, size_t max, std::vector<uint64_t>* out);

// The UIDs a set the agent sent names, to tell which of several pipelined
// UID FETCH commands an untagged FETCH answers: Dovecot runs pipelined
// FETCH commands in parallel and their answers interleave, and a FETCH
// answer names no command. Only for sets without "*" ("n:*" also means
// the last message, whatever its UID).
class UidRanges {
 public:
  // False for anything but UIDs and ranges of them ("4:2" is "2:4",
  // RFC 3501), and for "*".
  bool Parse(std::string_view set);
  bool Contains(uint64_t uid) const;

 private:
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // sorted, merged
};

}  // namespace mobilesync::agent::imap

#endif  // MOBILESYNC_SYNC_AGENT_IMAP_UID_SET_H_
