#include "plugin/action_record.h"

#include <gtest/gtest.h>

namespace mobilesync::plugin {
namespace {

ActionRecord Insert() {
  ActionRecord r;
  r.kind = ActionKind::kInsert;
  r.box = "INBOX";
  r.uidvalidity = 1700000000;
  r.uid = 42;
  r.guid = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
  r.ts_us = 1763800000123456ULL;
  return r;
}

ActionRecord Trash() {
  ActionRecord r = Insert();
  r.kind = ActionKind::kTrash;
  r.box = "Trash";
  r.uid = 7;
  r.src_box = "INBOX";
  r.src_uidvalidity = 1700000000;
  r.src_uid = 42;
  return r;
}

std::string Format(const ActionRecord& r) {
  std::string v;
  Status s = FormatActionValue(r, &v);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return v;
}

TEST(ActionRecord, FormatsTheDocumentedLine) {
  EXPECT_EQ(Format(Insert()),
            "v1 kind=insert box=INBOX uidvalidity=1700000000 uid=42 "
            "guid=a1b2c3d4e5f60718293a4b5c6d7e8f90 ts=1763800000123456");
  EXPECT_EQ(Format(Trash()),
            "v1 kind=trash box=Trash uidvalidity=1700000000 uid=7 "
            "guid=a1b2c3d4e5f60718293a4b5c6d7e8f90 ts=1763800000123456 "
            "src_box=INBOX src_uidvalidity=1700000000 src_uid=42");
}

TEST(ActionRecord, RoundTripsEveryKind) {
  for (ActionKind k : {ActionKind::kInsert, ActionKind::kRead, ActionKind::kUnread,
                       ActionKind::kDestroy, ActionKind::kSent}) {
    ActionRecord r = Insert();
    r.kind = k;
    ActionRecord back;
    ASSERT_TRUE(ParseActionValue(Format(r), &back).ok()) << ActionKindName(k);
    EXPECT_EQ(back, r);
  }
  for (ActionKind k : {ActionKind::kTrash, ActionKind::kRestore}) {
    ActionRecord r = Trash();
    r.kind = k;
    ActionRecord back;
    ASSERT_TRUE(ParseActionValue(Format(r), &back).ok());
    EXPECT_EQ(back, r);
  }
  ActionRecord resync;
  resync.kind = ActionKind::kResync;
  resync.box = "Trash";
  resync.reason = "rename";
  resync.ts_us = 5;
  ActionRecord back;
  ASSERT_TRUE(ParseActionValue(Format(resync), &back).ok()) << Format(resync);
  EXPECT_EQ(back, resync);
}

TEST(ActionRecord, EncodesAwkwardMailboxNames) {
  ActionRecord r = Insert();
  r.kind = ActionKind::kSent;
  r.box = "Sent Items/100% done=yes \xc3\xa9";
  std::string v = Format(r);
  EXPECT_EQ(v.find("Sent Items"), std::string::npos);
  EXPECT_NE(v.find("box=Sent%20Items/100%25%20done%3Dyes%20%C3%A9 "), std::string::npos) << v;
  ActionRecord back;
  ASSERT_TRUE(ParseActionValue(v, &back).ok());
  EXPECT_EQ(back.box, r.box);
}

TEST(ActionRecord, EmptyGuidIsAllowed) {
  ActionRecord r = Insert();
  r.guid.clear();
  ActionRecord back;
  ASSERT_TRUE(ParseActionValue(Format(r), &back).ok());
  EXPECT_EQ(back.guid, "");
}

TEST(ActionRecord, IgnoresUnknownFieldsFromLaterWriters) {
  ActionRecord back;
  ASSERT_TRUE(ParseActionValue(Format(Insert()) + " flavour=new", &back).ok());
  EXPECT_EQ(back, Insert());
}

TEST(ActionRecord, RejectsBadValues) {
  const std::string good = Format(Insert());
  const char* bad[] = {
      "",
      "v2 kind=insert",
      "v1",
      "v1 ",
      "v1 kind=insert box=INBOX uidvalidity=1 uid=1 ts=1 ",    // trailing space
      "v1 kind=insert  box=INBOX uidvalidity=1 uid=1 ts=1",    // double space
      "v1 kind=frobnicate box=INBOX uidvalidity=1 uid=1 ts=1",
      "v1 kind=insert box=INBOX uidvalidity=1 uid=0 ts=1",     // uid 0
      "v1 kind=insert box=INBOX uidvalidity=1 ts=1",           // no uid
      "v1 kind=insert uidvalidity=1 uid=1 ts=1",               // no box
      "v1 kind=insert box=INBOX uidvalidity=1 uid=1",          // no ts
      "v1 box=INBOX uidvalidity=1 uid=1 ts=1",                 // no kind
      "v1 kind=insert box=INBOX uidvalidity=1 uid=4294967296 ts=1",
      "v1 kind=insert box=INBOX uidvalidity=1 uid=01 ts=1",
      "v1 kind=insert box=INBOX uidvalidity=1 uid=-1 ts=1",
      "v1 kind=insert box=INBOX uidvalidity=1 uid=1 uid=2 ts=1",
      "v1 kind=insert box=IN%2 uidvalidity=1 uid=1 ts=1",
      "v1 kind=insert box=IN%00X uidvalidity=1 uid=1 ts=1",
      "v1 kind=insert box=IN%zzX uidvalidity=1 uid=1 ts=1",
      "v1 kind=insert box=INBOX uidvalidity=1 uid=1 ts=1 =x",
      "v1 kind=insert box=INBOX uidvalidity=1 uid=1 ts=1 novalue",
      "v1 kind=trash box=Trash uidvalidity=1 uid=1 ts=1",      // no source
      "v1 kind=insert box=IN\tBOX uidvalidity=1 uid=1 ts=1",
  };
  for (const char* b : bad) {
    ActionRecord r;
    EXPECT_FALSE(ParseActionValue(b, &r).ok()) << "'" << b << "'";
  }
  ActionRecord r;
  EXPECT_FALSE(ParseActionValue(std::string("v1 kind=insert\0", 15), &r).ok());
  EXPECT_FALSE(ParseActionValue(good + " pad=" + std::string(kMaxActionValueLength, 'x'), &r).ok());
}

TEST(ActionRecord, EveryTruncationIsRejectedOrStillValid) {
  // A prefix either fails or (cut inside the last field) parses to a
  // different but valid record; it never crashes.
  const std::string v = Format(Trash());
  for (size_t n = 0; n < v.size(); ++n) {
    ActionRecord r;
    Status s = ParseActionValue(v.substr(0, n), &r);
    if (s.ok()) {
      EXPECT_FALSE(r == Trash()) << n;
    }
  }
}

TEST(ActionRecord, RefusesToFormatInvalidRecords) {
  ActionRecord r = Insert();
  r.uid = 0;
  std::string v;
  EXPECT_FALSE(FormatActionValue(r, &v).ok());
  r = Insert();
  r.box = std::string(kMaxActionValueLength, '%');
  EXPECT_FALSE(FormatActionValue(r, &v).ok());
}

TEST(ActionKeyId, SortsByTimeThenPidThenCounter) {
  std::string a = FormatActionKeyId(1763800000123456ULL, 4242, 1);
  EXPECT_EQ(a, "0006442ab0765240-00001092-00000001");
  EXPECT_EQ(a.size(), kActionKeyIdLength);
  EXPECT_LT(FormatActionKeyId(9, 0xffffffff, 0xffffffff), FormatActionKeyId(10, 0, 0));
  EXPECT_LT(FormatActionKeyId(0xff, 1, 2), FormatActionKeyId(0x100, 1, 1));
  uint64_t ts;
  uint32_t pid, counter;
  ASSERT_TRUE(ParseActionKeyId(a, &ts, &pid, &counter).ok());
  EXPECT_EQ(ts, 1763800000123456ULL);
  EXPECT_EQ(pid, 4242u);
  EXPECT_EQ(counter, 1u);
  for (size_t n = 0; n < a.size(); ++n) {
    EXPECT_FALSE(ParseActionKeyId(a.substr(0, n), &ts, &pid, &counter).ok()) << n;
  }
  EXPECT_FALSE(ParseActionKeyId("0006442AB0765240-00001092-00000001", &ts, &pid, &counter).ok());
}

TEST(PercentCoding, RoundTripsAllBytesButNul) {
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  std::string enc = PercentEncode(all);
  for (char c : enc) {
    EXPECT_TRUE(c > 0x20 && c < 0x7f && c != '=') << int(c);
  }
  std::string dec;
  ASSERT_TRUE(PercentDecode(enc, &dec));
  EXPECT_EQ(dec, all);
  EXPECT_FALSE(PercentDecode("%", &dec));
  EXPECT_FALSE(PercentDecode("%4", &dec));
  EXPECT_FALSE(PercentDecode("%00", &dec));
}

}  // namespace
}  // namespace mobilesync::plugin
