// Reading METADATA (RFC 5464) responses in tests: the mobilesync plugin's
// attributes are read back the way an IMAP client or the agent would.
#ifndef MOBILESYNC_TESTS_HARNESS_METADATA_H_
#define MOBILESYNC_TESTS_HARNESS_METADATA_H_

#include <map>
#include <string>

#include "common/status.h"
#include "harness/mail_clients.h"

namespace mobilesync::testing {

// Parses the untagged "METADATA <mailbox> (<entry> <value> ...)" lines of
// a GETMETADATA response (as ImapTestClient returns them: a literal is
// inlined after a "\n") into entry -> value. NIL values are left out.
[[nodiscard]] Status ParseMetadataResponse(const ImapResponse& response,
                                           std::map<std::string, std::string>* out);

// GETMETADATA (DEPTH infinity) "<mailbox>" <entry> over `imap`.
[[nodiscard]] Status GetMetadata(ImapTestClient* imap, const std::string& mailbox,
                                 const std::string& entry,
                                 std::map<std::string, std::string>* out);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_METADATA_H_
