// The listing cache's file format and its update from CHANGEDSINCE and
// UID SEARCH answers (sync_agent/listing_cache.h).
#include "sync_agent/listing_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "harness/temp_dir.h"

namespace mobilesync::agent {
namespace {

BoxListing Sample() {
  BoxListing l;
  l.user = "jane doe@example.test";  // spaces and '=' are encoded
  l.box = "Deleted Items=old";
  l.uidvalidity = 1700000000;
  l.modseq = 220;
  l.listed_s = 1800000000;
  ListedMessage a;
  a.seen = true;
  a.date = 1799990000;
  a.size = 2048;
  a.guid = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
  a.has_message_id = true;
  a.message_id = "<a b@example.test>";
  l.messages[3] = a;
  ListedMessage b;
  b.flagged = true;
  b.date = -5;  // before 1970: INTERNALDATE allows it
  b.size = 0;
  b.guid = "ffff";
  l.messages[9] = b;  // Message-ID not fetched
  ListedMessage c = b;
  c.has_message_id = true;  // fetched, the message has none
  l.messages[10] = c;
  return l;
}

void ExpectSame(const BoxListing& a, const BoxListing& b) {
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.box, b.box);
  EXPECT_EQ(a.uidvalidity, b.uidvalidity);
  EXPECT_EQ(a.modseq, b.modseq);
  EXPECT_EQ(a.listed_s, b.listed_s);
  EXPECT_TRUE(a.messages == b.messages);
}

TEST(ListingCache, RoundTripsEveryField) {
  const BoxListing l = Sample();
  BoxListing back;
  ASSERT_TRUE(DecodeListing(EncodeListing(l), &back).ok());
  ExpectSame(l, back);
  BoxListing empty;
  empty.user = "u";
  empty.box = "INBOX";
  empty.uidvalidity = 1;
  ASSERT_TRUE(DecodeListing(EncodeListing(empty), &back).ok());
  ExpectSame(empty, back);
}

TEST(ListingCache, AnyDamageOrCutIsRefused) {
  const std::string good = EncodeListing(Sample());
  BoxListing back;
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x20;
    EXPECT_FALSE(DecodeListing(bad, &back).ok()) << i;
    EXPECT_TRUE(back.messages.empty());
    EXPECT_FALSE(DecodeListing(good.substr(0, i), &back).ok()) << i;
  }
  EXPECT_FALSE(DecodeListing(good + good, &back).ok());
}

// The trailer EncodeListing writes: FNV-1a 64 of everything before it.
std::string Seal(const std::string& body) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "end %016llx\n", static_cast<unsigned long long>(h));
  return body + buf;
}

// Content that is wrong under a right checksum (a bug of ours, a file of a
// later version) is refused as well.
TEST(ListingCache, WrongContentUnderARightChecksumIsRefused) {
  const std::string head =
      "mobilesync-listing v1 uidvalidity=7 modseq=9 listed=1800000000 count=2 user=u box=INBOX\n";
  const std::string a = "3 s- 1799990000 2048 abcd =%3Cid%40x%3E\n";
  const std::string b = "5 -f 0 1 ef -\n";
  BoxListing back;
  ASSERT_TRUE(DecodeListing(Seal(head + a + b), &back).ok());
  EXPECT_EQ(back.messages.size(), 2u);
  EXPECT_EQ(back.messages[3].message_id, "<id@x>");
  const std::string bad_lines[] = {
      a,                                                   // count 2, one line
      a + b + "6 -- 0 1 ef -\n",                           // count 2, three lines
      b + a,                                               // UIDs not ascending
      a + a,                                               // twice the same UID
      a + "0 -- 0 1 ef -\n",                               // UID 0
      a + "4294967296 -- 0 1 ef -\n",                      // UID past 32 bits
      a + "5 x- 0 1 ef -\n",                               // flags
      a + "5 -- 01 1 ef -\n",                              // not canonical
      a + "5 -- -0 1 ef -\n",                              // -0
      a + "5 -- 0 1 ef\n",                                 // a field short
      a + "5 -- 0 1 ef - more\n",                          // a field more
      a + "5 -- 0 1 ef id\n",                              // Message-ID without '='
      a + "5 -- 0 1 e%zz -\n",                             // bad percent-encoding
      a + "5 -- 0 1 " + std::string(129, 'a') + " -\n",    // GUID too long
      a + "5 -- 0 1 ef =" + std::string(999, 'i') + "\n",  // Message-ID too long
  };
  for (const std::string& lines : bad_lines) {
    EXPECT_FALSE(DecodeListing(Seal(head + lines), &back).ok()) << lines;
    EXPECT_TRUE(back.messages.empty());
  }
  const std::string bad_heads[] = {
      "mobilesync-listing v2 uidvalidity=7 modseq=9 listed=1 count=0 user=u box=INBOX\n",
      "mobilesync-listing v1 uidvalidity=0 modseq=9 listed=1 count=0 user=u box=INBOX\n",
      "mobilesync-listing v1 uidvalidity=4294967296 modseq=9 listed=1 count=0 user=u box=I\n",
      "mobilesync-listing v1 modseq=9 uidvalidity=7 listed=1 count=0 user=u box=INBOX\n",
      "mobilesync-listing v1 uidvalidity=7 modseq=9 listed=1 count=1000001 user=u box=I\n",
      "mobilesync-listing v1 uidvalidity=7 modseq=9 listed=1 count=0 user=u\n",
      "mobilesync-listing v1 uidvalidity=7 modseq=9 listed=1 count=0 user=u box=I x=1\n",
  };
  for (const std::string& h : bad_heads) {
    EXPECT_FALSE(DecodeListing(Seal(h), &back).ok()) << h;
  }
}

TEST(ListingCache, UpdateAppliesChangesAndDropsWhatIsGone) {
  BoxListing l = Sample();
  std::map<uint32_t, ListedMessage> changed;
  ListedMessage three = l.messages[3];
  three.seen = false;
  three.has_message_id = false;  // CHANGEDSINCE does not fetch it
  three.message_id.clear();
  changed[3] = three;
  ListedMessage fresh;
  fresh.guid = "new";
  fresh.size = 7;
  changed[11] = fresh;
  changed[12] = fresh;  // arrived after the SEARCH: not there yet
  ASSERT_TRUE(UpdateListing(&l, {3, 10, 11}, changed, 300));
  EXPECT_EQ(l.modseq, 300u);
  ASSERT_EQ(l.messages.size(), 3u);
  EXPECT_FALSE(l.messages[3].seen);
  EXPECT_TRUE(l.messages[3].has_message_id);  // kept from before
  EXPECT_EQ(l.messages[3].message_id, "<a b@example.test>");
  EXPECT_EQ(l.messages.count(9), 0u);  // gone
  EXPECT_EQ(l.messages[11].guid, "new");
  EXPECT_FALSE(l.messages[11].has_message_id);

  // A UID that is there but neither cached nor changed: not trusted.
  BoxListing m = Sample();
  EXPECT_FALSE(UpdateListing(&m, {3, 9, 10, 42}, {}, 300));
  BoxListing n = Sample();
  EXPECT_FALSE(UpdateListing(&n, {0}, {}, 300));
}

TEST(ListingCache, UsableOnlyForTheSameMailboxAtOrAfterItsModseqWithinTheHour) {
  const BoxListing l = Sample();  // uidvalidity 1700000000, modseq 220, listed 1800000000
  const int64_t t = l.listed_s;
  EXPECT_TRUE(ListingUsable(l, l.uidvalidity, 220, t));
  EXPECT_TRUE(ListingUsable(l, l.uidvalidity, 5000, t + kMaxListingAgeS - 1));
  EXPECT_FALSE(ListingUsable(l, l.uidvalidity + 1, 220, t));  // another mailbox
  EXPECT_FALSE(ListingUsable(l, 0, 220, t));
  EXPECT_FALSE(ListingUsable(l, l.uidvalidity, 219, t));                    // modseq went back
  EXPECT_FALSE(ListingUsable(l, l.uidvalidity, 0, t));                      // no CONDSTORE now
  EXPECT_FALSE(ListingUsable(l, l.uidvalidity, 220, t + kMaxListingAgeS));  // too old
  EXPECT_TRUE(ListingUsable(l, l.uidvalidity, 220, t - 60));                // clocks a minute apart
  EXPECT_FALSE(ListingUsable(l, l.uidvalidity, 220, t - 61));               // listed in the future
  BoxListing spoilt = l;
  spoilt.modseq = 0;
  EXPECT_FALSE(ListingUsable(spoilt, l.uidvalidity, 220, t));
}

TEST(ListingCache, FilesAreTheirUsersAndPrivate) {
  testing::TempDir dir;
  const BoxListing l = Sample();
  const std::string path = ListingPath(dir.path(), l.user, l.box);
  EXPECT_NE(path, ListingPath(dir.path(), l.user, "INBOX"));
  EXPECT_NE(path, ListingPath(dir.path(), "jane", l.box));
  BoxListing back;
  EXPECT_TRUE(ReadListing(path, l.user, l.box, &back).IsNotFound());
  ASSERT_TRUE(WriteListing(path, l).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(ReadListing(path, l.user, l.box, &back).ok());
  ExpectSame(l, back);
  // Read as another user or box (a copied or colliding file): refused.
  EXPECT_FALSE(ReadListing(path, "jane", l.box, &back).ok());
  EXPECT_FALSE(ReadListing(path, l.user, "INBOX", &back).ok());
  EXPECT_TRUE(back.messages.empty());
  ASSERT_TRUE(RemoveListing(path).ok());
  EXPECT_TRUE(ReadListing(path, l.user, l.box, &back).IsNotFound());
  EXPECT_TRUE(RemoveListing(path).ok());  // idempotent
}

TEST(ListingCache, StaleFilesAreRemovedAndFreshOnesKept) {
  testing::TempDir dir;
  BoxListing l = Sample();
  const std::string fresh = ListingPath(dir.path(), "fresh", "INBOX");
  const std::string stale = ListingPath(dir.path(), "gone", "INBOX");
  ASSERT_TRUE(WriteListing(fresh, l).ok());
  ASSERT_TRUE(WriteListing(stale, l).ok());
  ASSERT_TRUE(WriteListing(stale + ".tmp", l).ok());            // a crash mid-write
  ASSERT_TRUE(WriteListing(dir.path() + "/agent.db", l).ok());  // not ours
  struct stat st;
  ASSERT_EQ(stat(stale.c_str(), &st), 0);
  const int64_t now = static_cast<int64_t>(st.st_mtime);
  struct timespec old_times[2] = {{now - kMaxListingAgeS - 5, 0}, {now - kMaxListingAgeS - 5, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, stale.c_str(), old_times, 0), 0);
  EXPECT_EQ(RemoveStaleListings(dir.path(), now), 2u);
  EXPECT_EQ(stat(stale.c_str(), &st), -1);
  EXPECT_EQ(stat((stale + ".tmp").c_str(), &st), -1);
  EXPECT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(stat((dir.path() + "/agent.db").c_str(), &st), 0);
  EXPECT_EQ(RemoveStaleListings(dir.path() + "/none", now), 0u);
}

}  // namespace
}  // namespace mobilesync::agent
