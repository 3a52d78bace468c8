#include "sync_agent/imap/uid_set.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace mobilesync::agent::imap {
namespace {

std::vector<uint64_t> Parse(std::string_view set, size_t max = 1000) {
  std::vector<uint64_t> out;
  if (!ParseUidSet(set, max, &out)) return {0};  // 0 is never a UID: "refused"
  return out;
}

TEST(UidSet, WritesRangesFromUnsortedUidsWithDuplicates) {
  EXPECT_EQ(UidSet({9, 1, 2, 3, 7, 3, 10}), "1:3,7,9:10");
  EXPECT_EQ(UidSet({42}), "42");
  EXPECT_EQ(UidSet({}), "");
}

TEST(UidSet, ReadsWhatAServerWrites) {
  EXPECT_EQ(Parse("1:5,7,9:10"), (std::vector<uint64_t>{1, 2, 3, 4, 5, 7, 9, 10}));
  EXPECT_EQ(Parse("4294967295"), (std::vector<uint64_t>{4294967295u}));
  EXPECT_EQ(Parse("3:3"), (std::vector<uint64_t>{3}));
}

TEST(UidSet, RefusesWhatIsNotASetOfUids) {
  for (const char* bad : {"",     ",",          "1,",  ",1",    "0",       "0:3", "5:3", "1:",
                          ":1",   "1:2:3",      "*",   "1:*",   "01",      "+1",  "-1",  "1 2",
                          "1,,2", "4294967296", "3,2", "1:5,5", "1:5,4:9", "x",   "1;2"}) {
    EXPECT_EQ(Parse(bad), std::vector<uint64_t>{0}) << bad;
  }
}

TEST(UidSet, TheBoundCountsEveryUidAcrossRanges) {
  EXPECT_EQ(Parse("1:10", 10).size(), 10u);
  EXPECT_EQ(Parse("1:11", 10), std::vector<uint64_t>{0});
  EXPECT_EQ(Parse("1:5,7:11", 10).size(), 10u);
  EXPECT_EQ(Parse("1:5,7:12", 10), std::vector<uint64_t>{0});
  // A hostile range is refused before anything is appended for it.
  std::vector<uint64_t> out;
  EXPECT_FALSE(ParseUidSet("1:4294967295", 1000000, &out));
  EXPECT_TRUE(out.empty());
}

TEST(UidSet, WhatItWritesItReadsBack) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<uint64_t> uids;
    uint64_t u = 0;
    const int n = static_cast<int>(rng() % 60) + 1;
    for (int i = 0; i < n; ++i) {
      u += 1 + rng() % 3;
      uids.push_back(u);
    }
    EXPECT_EQ(Parse(UidSet(uids)), uids) << UidSet(uids);
  }
}

TEST(UidRanges, NamesExactlyTheUidsOfTheSet) {
  UidRanges r;
  ASSERT_TRUE(r.Parse("7,2:4,9:8,20"));  // any order, ranges either way round
  for (uint64_t uid : {2u, 3u, 4u, 7u, 8u, 9u, 20u}) EXPECT_TRUE(r.Contains(uid)) << uid;
  for (uint64_t uid : {0ull, 1ull, 5ull, 6ull, 10ull, 19ull, 21ull, 4294967295ull})
    EXPECT_FALSE(r.Contains(uid)) << uid;
  ASSERT_TRUE(r.Parse("1:4294967295"));
  EXPECT_TRUE(r.Contains(1) && r.Contains(4294967295));
  EXPECT_FALSE(r.Contains(0) || r.Contains(4294967296));
  ASSERT_TRUE(r.Parse("5,5:6,3:5"));  // overlapping: merged
  EXPECT_TRUE(r.Contains(3) && r.Contains(6));
  EXPECT_FALSE(r.Contains(2) || r.Contains(7));
  for (const char* bad : {"", "1:*", "*", "0", "1,", ",1", "1:0", "a", "1::2", "4294967296"}) {
    EXPECT_FALSE(r.Parse(bad)) << bad;
  }
  // What UidSet writes for scattered UIDs: each found by a search, not a walk.
  std::vector<uint64_t> uids;
  for (uint64_t u = 1; u <= 20000; u += 2) uids.push_back(u);
  ASSERT_TRUE(r.Parse(UidSet(uids)));
  for (uint64_t u = 1; u <= 20001; ++u) EXPECT_EQ(r.Contains(u), u % 2 == 1 && u < 20000) << u;
}

}  // namespace
}  // namespace mobilesync::agent::imap
