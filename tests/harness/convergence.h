// Do Dovecot and the device agree? The check every fault test ends with
// (crash_test, network_test, ...): message by message, by subject.
#ifndef MOBILESYNC_TESTS_HARNESS_CONVERGENCE_H_
#define MOBILESYNC_TESTS_HARNESS_CONVERGENCE_H_

#include <set>
#include <string>

#include "harness/system_fixture.h"

namespace mobilesync::testing {

// What must be true, by subject.
struct Expected {
  std::set<std::string> alive;      // must be in Dovecot (INBOX or Trash), once
  std::set<std::string> destroyed;  // must be gone from both sides
};

// Lists USER's INBOX and Trash (IMAP) and the device's window; returns a
// description of every disagreement (empty: converged): a duplicate on
// either side, a message of `want.alive` missing from Dovecot, one of
// `want.destroyed` present anywhere, a device message not in Dovecot or in
// another read/Trash state, a window over N.
std::string CompareSides(MobilesyncSystem* sys, const std::string& user, const Expected& want);

// Syncs USER (`mobilesyncctl sync --wait`, twice a round) until
// CompareSides is empty or `timeout` passes; returns the last disagreement
// (empty: converged).
std::string SyncUntilConverged(MobilesyncSystem* sys, const std::string& user, const Expected& want,
                               milliseconds timeout = milliseconds(90000));

// Occurrences of `needle` in `text` from `offset` on.
size_t CountOf(const std::string& text, const std::string& needle, size_t offset = 0);

}  // namespace mobilesync::testing

#endif  // MOBILESYNC_TESTS_HARNESS_CONVERGENCE_H_
