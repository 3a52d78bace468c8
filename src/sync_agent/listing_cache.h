// The listing cache: what the last session listed of INBOX and Trash, kept
// by the agent in state_dir/listings/ (docs/agent.md, "The listing cache").
#ifndef MOBILESYNC_SYNC_AGENT_LISTING_CACHE_H_
#define MOBILESYNC_SYNC_AGENT_LISTING_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mobilesync::agent {

// Listing a mailbox of 10,000 messages (UID FETCH 1:* with INTERNALDATE,
// RFC822.SIZE and X-GUID) is a fifth of an incremental session. A message
// never changes in IMAP but for its flags, and every flag change and every
// new message raises the mailbox's HIGHESTMODSEQ (CONDSTORE): a listing
// made after HIGHESTMODSEQ was M, plus what `UID FETCH 1:* (...)
// (CHANGEDSINCE M)` returns, less the UIDs `UID SEARCH ALL` no longer finds,
// is the listing now, for a few milliseconds. The cache is only that:
// missing, damaged, of another UIDVALIDITY, from a HIGHESTMODSEQ that went
// back, or short of a UID that is there, it costs a full listing, never a
// wrong one.

// One message as listed: what LocalMailbox makes its engine message of.
struct ListedMessage {
  bool seen = false;
  bool flagged = false;
  int64_t date = 0;   // INTERNALDATE in seconds; 0 when it did not parse
  uint64_t size = 0;  // RFC822.SIZE
  std::string guid;   // X-GUID
  // The Message-ID header's value ("" when it has none); only known once
  // fetched (a mapped message's is never needed).
  bool has_message_id = false;
  std::string message_id;

  bool operator==(const ListedMessage& o) const;
};

struct BoxListing {
  std::string user;
  std::string box;
  uint32_t uidvalidity = 0;
  uint64_t modseq = 0;  // HIGHESTMODSEQ at the SELECT before the listing
  // When every message was last fetched (the listing descends from it).
  int64_t listed_s = 0;
  std::map<uint32_t, ListedMessage> messages;  // by UID
};

// A listing is brought up to date for an hour at most after every message
// was fetched; then they are fetched again. Whatever HIGHESTMODSEQ did not
// show (Dovecot's index rebuilt from scratch, its modseqs counted again
// from 1 and past ours) cannot hide longer than that.
constexpr int64_t kMaxListingAgeS = 3600;

// Bounds of what is cached and of what is read back.
constexpr size_t kMaxListedMessages = 1000000;
constexpr size_t kMaxListedGuidBytes = 128;
constexpr size_t kMaxListedMessageIdBytes = 998;  // a header line (RFC 5322)
constexpr size_t kMaxListingFileBytes = 256u << 20;

// The file format (one line per message between a header and a trailer with
// a checksum of everything before it): see listing_cache.cc.
std::string EncodeListing(const BoxListing& listing);
// Corruption (and nothing in *out that counts) for anything but what
// EncodeListing makes: a damaged or truncated file is a cache miss.
Status DecodeListing(std::string_view data, BoxListing* out);

// Brings `listing` (made at its modseq) up to `modseq`: `changed` holds the
// complete entries CHANGEDSINCE returned (a new message, or new flags of a
// known one, whose Message-ID is kept), `present` the UIDs there now. False
// when a present UID is neither cached nor changed (a message that arrived
// and changed nothing the FETCH saw: the listing cannot be trusted), and
// then `listing` is unspecified.
bool UpdateListing(BoxListing* listing, const std::vector<uint64_t>& present,
                   std::map<uint32_t, ListedMessage> changed, uint64_t modseq);

// Whether `listing` (read back, of the right user and box) can be brought
// up to date from a mailbox SELECTed now with `uidvalidity` and
// `highestmodseq`: the same UIDVALIDITY, a modseq not past the mailbox's
// (one that went back is an index rebuilt: its modseqs are not ours), and
// every message fetched less than kMaxListingAgeS ago (a clock more than a
// minute ahead of now is no age at all).
bool ListingUsable(const BoxListing& listing, uint32_t uidvalidity, uint64_t highestmodseq,
                   int64_t now_s);

// Where `user`'s listing of `box` lives in `dir`: a name from a hash of
// both (a user name may hold any byte a file name may not); the file itself
// names them, and a file of another user or box is a miss.
std::string ListingPath(const std::string& dir, const std::string& user, const std::string& box);
// NotFound when there is no file; Corruption when it is damaged,
// too large, or of another user or box.
Status ReadListing(const std::string& path, const std::string& user, const std::string& box,
                   BoxListing* out);
// Replaces the file whole (a temporary file, mode 0600, renamed over it):
// a crash leaves the old listing or the new one. Not synced to disk: a
// listing lost with the page cache is a miss.
Status WriteListing(const std::string& path, const BoxListing& listing);
Status RemoveListing(const std::string& path);
// Removes the files in `dir` that can no longer be used (listings and id
// map caches written more than kMaxListingAgeS before `now_s`: a user no
// longer enabled, a mailbox renamed) and leftover temporary files; the
// number removed.
size_t RemoveStaleListings(const std::string& dir, int64_t now_s);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_LISTING_CACHE_H_
