// The quick token (docs/attributes.md, "The quick token").
#ifndef MOBILESYNC_SYNC_AGENT_QUICK_TOKEN_H_
#define MOBILESYNC_SYNC_AGENT_QUICK_TOKEN_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "sync_agent/engine/types.h"

namespace mobilesync::agent {

// The quick token: what a quick check that found nothing to do saw, kept by
// the agent (UserRegistry) so that the next check of the user can skip
// reading the attributes. Dovecot's file dict reads its whole file (every
// id-map entry) in a new IMAP process to answer even one GETMETADATA; a
// STATUS does not. `print` is INBOX's and Trash's STATUS with
// HIGHESTMODSEQ, which moves with every flag change and every attribute
// write (an action recorded by the plugin, our own writes): while it is
// the same, the attributes are too, and the check would find the same.
// Value: `v1 gen=<g> n=<N> ts=<unix s> fp=<percent-encoded print>`.
struct QuickToken {
  engine::SyncGeneration generation = 0;
  uint32_t window_size = 0;
  std::string print;
  int64_t made_s = 0;
};
constexpr size_t kMaxQuickTokenBytes = 1024;
// A token is taken at its word for an hour at most: then the attributes
// are read again (a change Dovecot did not see, e.g. an attribute file
// restored from a backup, cannot hide longer than that).
constexpr int64_t kQuickTokenMaxAgeS = 3600;
std::string MakeQuickToken(engine::SyncGeneration generation, uint32_t window_size,
                           const std::string& print, int64_t now_s);
// False (and `why`) when `token` is malformed, over kMaxQuickTokenBytes,
// or older than kQuickTokenMaxAgeS (or from the future) at `now_s`.
bool ParseQuickToken(const std::string& token, int64_t now_s, QuickToken* out, std::string* why);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_QUICK_TOKEN_H_
