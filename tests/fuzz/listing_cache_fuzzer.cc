// libFuzzer target: DecodeListing on arbitrary bytes (the agent reads its
// listing files back from state_dir). A listing that decodes must be within
// its bounds, and encode to bytes that decode to the same listing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sync_agent/listing_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mobilesync::agent;
  const std::string in(reinterpret_cast<const char*>(data), size);
  BoxListing l;
  if (!DecodeListing(in, &l).ok()) {
    if (!l.messages.empty() || l.uidvalidity != 0) abort();  // nothing half-read
    return 0;
  }
  if (l.uidvalidity == 0 || l.messages.size() > kMaxListedMessages) abort();
  for (const auto& [uid, m] : l.messages) {
    if (uid == 0 || m.guid.size() > kMaxListedGuidBytes ||
        m.message_id.size() > kMaxListedMessageIdBytes ||
        (!m.has_message_id && !m.message_id.empty()))
      abort();
  }
  BoxListing back;
  if (!DecodeListing(EncodeListing(l), &back).ok()) abort();
  if (back.user != l.user || back.box != l.box || back.uidvalidity != l.uidvalidity ||
      back.modseq != l.modseq || back.listed_s != l.listed_s || !(back.messages == l.messages))
    abort();
  return 0;
}
