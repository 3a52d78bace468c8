// The id map cache's file format and when a cached map may stand in for
// reading the map from Dovecot (sync_agent/id_map_cache.h).
#include "sync_agent/id_map_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "harness/temp_dir.h"
#include "sync_agent/cache_file.h"

namespace mobilesync::agent {
namespace {

IdMapCache Sample() {
  IdMapCache c;
  c.user = "jane doe@example.test";  // spaces and '=' are encoded
  c.stamp = "v1 id=00c0ffee00c0ffee";
  c.read_s = 1800000000;
  c.entries["1700000000-3"] = "v1 remote=r3 box=INBOX guid=0a1b";
  c.entries["1700000000-42"] = "v1 remote=r42 box=Deleted%20Items guid=ff";
  c.entries["1700000001-7"] = "v1 remote=r7 box=INBOX guid=ee\x01%";  // any byte survives
  return c;
}

void ExpectSame(const IdMapCache& a, const IdMapCache& b) {
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.stamp, b.stamp);
  EXPECT_EQ(a.read_s, b.read_s);
  EXPECT_TRUE(a.entries == b.entries);
}

TEST(IdMapCache, RoundTripsEveryField) {
  const IdMapCache c = Sample();
  IdMapCache back;
  ASSERT_TRUE(DecodeIdMap(EncodeIdMap(c), &back).ok());
  ExpectSame(c, back);
  IdMapCache empty;  // a user with no message in the window
  empty.user = "u";
  empty.stamp = "v1 id=1";
  ASSERT_TRUE(DecodeIdMap(EncodeIdMap(empty), &back).ok());
  ExpectSame(empty, back);
}

TEST(IdMapCache, AnyDamageOrCutIsRefused) {
  const std::string good = EncodeIdMap(Sample());
  IdMapCache back;
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x20;
    EXPECT_FALSE(DecodeIdMap(bad, &back).ok()) << i;
    EXPECT_TRUE(back.entries.empty());
    EXPECT_TRUE(back.stamp.empty());
    EXPECT_FALSE(DecodeIdMap(good.substr(0, i), &back).ok()) << i;
  }
  EXPECT_FALSE(DecodeIdMap(good + good, &back).ok());
}

// Content that is wrong under a right checksum (a bug of ours, a file of a
// later version) is refused as well.
TEST(IdMapCache, WrongContentUnderARightChecksumIsRefused) {
  const std::string good_head =
      "mobilesync-idmap v1 read=1800000000 count=2 user=u stamp=v1%20id%3D9\n";
  const std::string a = "7-3 v1%20remote=a\n";
  const std::string b = "7-5 v1%20remote=b\n";
  IdMapCache back;
  ASSERT_TRUE(DecodeIdMap(cache_file::Seal(good_head + a + b), &back).ok());
  EXPECT_EQ(back.stamp, "v1 id=9");
  EXPECT_EQ(back.entries.at("7-3"), "v1 remote=a");
  const std::string bad_lines[] = {
      a,                                           // count 2, one line
      a + b + "7-6 x\n",                           // count 2, three lines
      b + a,                                       // keys not ascending
      a + a,                                       // twice the same key
      a + "7-x y\n",                               // not a key
      a + "7-9\n",                                 // no value
      a + "7-9 \n",                                // an empty value
      a + "7-9 y z\n",                             // a field more
      a + "7-9 y%zz\n",                            // bad percent-encoding
      a + "7-9 y%00\n",                            // NUL
      a + std::string(33, '1') + " y\n",           // key too long
      a + "7-9 " + std::string(2049, 'v') + "\n",  // value too long
  };
  for (const std::string& lines : bad_lines) {
    EXPECT_FALSE(DecodeIdMap(cache_file::Seal(good_head + lines), &back).ok()) << lines;
    EXPECT_TRUE(back.entries.empty());
  }
  const std::string bad_heads[] = {
      "mobilesync-idmap v2 read=1 count=0 user=u stamp=s\n",
      "mobilesync-listing v1 read=1 count=0 user=u stamp=s\n",
      "mobilesync-idmap v1 count=0 read=1 user=u stamp=s\n",   // fields out of order
      "mobilesync-idmap v1 read=01 count=0 user=u stamp=s\n",  // not canonical
      "mobilesync-idmap v1 read=1 count=1000001 user=u stamp=s\n",
      "mobilesync-idmap v1 read=1 count=0 user=u stamp=\n",  // no stamp
      "mobilesync-idmap v1 read=1 count=0 user=u stamp=" + std::string(65, 's') + "\n",
      "mobilesync-idmap v1 read=1 count=0 user=u\n",
      "mobilesync-idmap v1 read=1 count=0 user=u stamp=s x=1\n",
  };
  for (const std::string& h : bad_heads) {
    EXPECT_FALSE(DecodeIdMap(cache_file::Seal(h), &back).ok()) << h;
  }
}

TEST(IdMapCache, UsableOnlyUnderTheSameStampWithinTheHour) {
  const IdMapCache c = Sample();
  const int64_t t = c.read_s;
  EXPECT_TRUE(IdMapUsable(c, c.stamp, t));
  EXPECT_TRUE(IdMapUsable(c, c.stamp, t + kMaxIdMapAgeS - 1));
  EXPECT_FALSE(IdMapUsable(c, c.stamp, t + kMaxIdMapAgeS));   // too old
  EXPECT_FALSE(IdMapUsable(c, "v1 id=00c0ffee00c0ffef", t));  // written since
  EXPECT_FALSE(IdMapUsable(c, "", t));                        // no stamp in Dovecot
  EXPECT_TRUE(IdMapUsable(c, c.stamp, t - 60));               // clocks a minute apart
  EXPECT_FALSE(IdMapUsable(c, c.stamp, t - 61));              // read in the future
  IdMapCache none = c;
  none.stamp.clear();
  EXPECT_FALSE(IdMapUsable(none, "", t));  // both empty is no match
}

TEST(IdMapCache, FilesAreTheirUsersAndPrivate) {
  testing::TempDir dir;
  const IdMapCache c = Sample();
  const std::string path = IdMapPath(dir.path(), c.user);
  EXPECT_NE(path, IdMapPath(dir.path(), "jane"));
  IdMapCache back;
  EXPECT_TRUE(ReadIdMap(path, c.user, &back).IsNotFound());
  ASSERT_TRUE(WriteIdMap(path, c).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(ReadIdMap(path, c.user, &back).ok());
  ExpectSame(c, back);
  // Read as another user (a copied or colliding file): refused.
  EXPECT_FALSE(ReadIdMap(path, "jane", &back).ok());
  EXPECT_TRUE(back.entries.empty());
  // A directory where the file should be: refused, not read.
  const std::string dir_path = IdMapPath(dir.path(), "dir");
  ASSERT_EQ(mkdir(dir_path.c_str(), 0700), 0);
  EXPECT_FALSE(ReadIdMap(dir_path, "dir", &back).ok());
  ASSERT_TRUE(cache_file::Remove(path).ok());
  EXPECT_TRUE(ReadIdMap(path, c.user, &back).IsNotFound());
  EXPECT_TRUE(cache_file::Remove(path).ok());  // idempotent
}

}  // namespace
}  // namespace mobilesync::agent
