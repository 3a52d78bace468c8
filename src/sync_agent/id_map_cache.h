// The id map cache: the agent's copy of a user's id map attributes
// (map/<uidvalidity>-<uid>, docs/attributes.md), kept in
// state_dir/listings/ beside the listing cache (docs/agent.md, "The id map
// cache").
#ifndef MOBILESYNC_SYNC_AGENT_ID_MAP_CACHE_H_
#define MOBILESYNC_SYNC_AGENT_ID_MAP_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mobilesync::agent {

// Reading the id map of 10,000 messages (GETMETADATA of 10,000 entries) is
// the largest single cost of an incremental session, and only the agent
// writes the map. Each of its SETMETADATA commands that changes a map entry
// also sets `mapstamp` to a new random value, in the same command (so in the
// same Dovecot transaction): the map in Dovecot is the copy made with a
// stamp exactly while `mapstamp` still holds that stamp. A session reads
// `mapstamp` with the action list and takes the map from here when they
// match; missing, damaged, of another stamp or user, or older than
// kMaxIdMapAgeS, the cache costs a full read, never a wrong map.
struct IdMapCache {
  std::string user;
  std::string stamp;   // the `mapstamp` value the entries go with
  int64_t read_s = 0;  // when the whole map was last read from Dovecot
  // Key after ".../map/" ("<uidvalidity>-<uid>") -> the attribute's value.
  std::map<std::string, std::string> entries;
};

// Whatever changed the map behind the agent's back (an administrator's
// doveadm, a restored dict) without the stamp is seen within an hour: the
// map is then read whole again.
constexpr int64_t kMaxIdMapAgeS = 3600;

constexpr size_t kMaxIdMapEntries = 1000000;
constexpr size_t kMaxIdMapKeyBytes = 32;      // "4294967295-4294967295"
constexpr size_t kMaxIdMapValueBytes = 2048;  // an attribute value (docs/attributes.md)
constexpr size_t kMaxIdMapStampBytes = 64;
constexpr size_t kMaxIdMapFileBytes = 512u << 20;

// The file format: see id_map_cache.cc.
std::string EncodeIdMap(const IdMapCache& cache);
// Corruption (and an empty *out) for anything but what EncodeIdMap makes.
Status DecodeIdMap(std::string_view data, IdMapCache* out);

// Whether `cache` is the map in Dovecot now that `mapstamp` holds `stamp`.
bool IdMapUsable(const IdMapCache& cache, const std::string& stamp, int64_t now_s);

std::string IdMapPath(const std::string& dir, const std::string& user);
// NotFound when there is none; Corruption when damaged or another user's.
Status ReadIdMap(const std::string& path, const std::string& user, IdMapCache* out);
Status WriteIdMap(const std::string& path, const IdMapCache& cache);

}  // namespace mobilesync::agent

#endif  // MOBILESYNC_SYNC_AGENT_ID_MAP_CACHE_H_
