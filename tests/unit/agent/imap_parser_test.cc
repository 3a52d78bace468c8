// ImapParser: framing across every split point, tokens, malformed input and
// the size limits.
#include "sync_agent/imap/imap_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mobilesync::agent::imap {
namespace {

// Feeds `input` in pieces cut at `cuts` and collects every response.
Status ParseAll(const std::string& input, const std::vector<size_t>& cuts,
                std::vector<ImapResponse>* out, ImapParserLimits limits = {}) {
  ImapParser p(limits);
  size_t prev = 0;
  std::vector<size_t> points = cuts;
  points.push_back(input.size());
  for (size_t cut : points) {
    p.Feed(std::string_view(input).substr(prev, cut - prev));
    prev = cut;
    while (true) {
      ImapResponse r;
      ImapParser::Result res;
      Status s = p.Next(&r, &res);
      if (!s.ok()) return s;
      if (res == ImapParser::Result::kNeedMore) break;
      out->push_back(std::move(r));
    }
  }
  if (p.buffered() != 0) return Status::Corruption("left over", std::to_string(p.buffered()));
  return Status::OK();
}

const char kSample[] =
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR] Dovecot ready.\r\n"
    "* 3 EXISTS\r\n"
    "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    "* 1 FETCH (UID 7 FLAGS (\\Seen) INTERNALDATE \"22-Nov-2026 10:00:00 +0000\" "
    "RFC822.SIZE 12 X-GUID 0a1b2c MODSEQ (42) BODY[] {12}\r\nHello\r\nWorld)\r\n"
    "* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n"
    "* LIST (\\HasNoChildren) \"/\" {8}\r\nodd\"name\r\n"
    "* METADATA \"\" (/private/vendor/vendor.mobilesync/action/1 {3}\r\nabc "
    "/private/vendor/vendor.mobilesync/action/2 NIL)\r\n"
    "+ idling\r\n"
    "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT DATE)] {4}\r\nab\r\n UID 9)\r\n"
    "m12 OK [APPENDUID 1700000000 8] Append completed (0.001 + 0.000 secs).\r\n"
    "m13 NO [ALERT] Don't \"do\" that\r\n";

void CheckSample(const std::vector<ImapResponse>& r) {
  ASSERT_EQ(r.size(), 12u);
  EXPECT_EQ(r[0].name, "OK");
  EXPECT_EQ(r[0].CodeName(), "CAPABILITY");
  EXPECT_EQ(r[0].code.size(), 4u);
  EXPECT_EQ(r[0].text, "Dovecot ready.");
  EXPECT_EQ(r[1].name, "EXISTS");
  EXPECT_EQ(*r[1].number, 3u);
  uint64_t n = 0;
  EXPECT_TRUE(r[2].code[1].ToNumber(&n));
  EXPECT_EQ(n, 1700000000u);
  EXPECT_EQ(r[3].args[0].list.size(), 5u);
  EXPECT_EQ(r[3].args[0].list[0].text, "\\Answered");
  const auto& kv = r[4].args[0].list;
  ASSERT_EQ(kv.size(), 14u);
  EXPECT_EQ(*r[4].number, 1u);
  EXPECT_EQ(kv[5].text, "22-Nov-2026 10:00:00 +0000");
  EXPECT_TRUE(kv[5].is_string());
  EXPECT_EQ(kv[12].text, "BODY[]");
  EXPECT_EQ(kv[13].text, "Hello\r\nWorld");
  EXPECT_TRUE(kv[11].is_list());
  EXPECT_EQ(r[5].args[2].text, "Trash");
  EXPECT_EQ(r[6].args[2].text, "odd\"name");
  EXPECT_EQ(r[7].name, "METADATA");
  EXPECT_EQ(r[7].args[0].text, "");
  ASSERT_EQ(r[7].args[1].list.size(), 4u);
  EXPECT_EQ(r[7].args[1].list[1].text, "abc");
  EXPECT_TRUE(r[7].args[1].list[3].is_nil());
  EXPECT_EQ(r[8].type, ImapResponse::Type::kContinuation);
  EXPECT_EQ(r[8].text, "idling");
  EXPECT_EQ(r[9].args[0].list[0].text, "BODY[HEADER.FIELDS (SUBJECT DATE)]");
  EXPECT_EQ(r[9].args[0].list[1].text, "ab\r\n");
  EXPECT_EQ(r[10].type, ImapResponse::Type::kTagged);
  EXPECT_EQ(r[10].tag, "m12");
  EXPECT_EQ(r[10].CodeName(), "APPENDUID");
  EXPECT_EQ(r[11].name, "NO");
  EXPECT_EQ(r[11].text, "Don't \"do\" that");
}

TEST(ImapParser, ParsesSampleInOnePiece) {
  std::vector<ImapResponse> r;
  Status s = ParseAll(kSample, {}, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  CheckSample(r);
}

TEST(ImapParser, EverySplitPointGivesTheSameResponses) {
  const std::string in = kSample;
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    std::vector<ImapResponse> r;
    Status s = ParseAll(in, {cut}, &r);
    ASSERT_TRUE(s.ok()) << "cut " << cut << ": " << s.ToString();
    CheckSample(r);
  }
}

TEST(ImapParser, EveryPairOfSplitPointsOnALiteralResponse) {
  const std::string in =
      "* 1 FETCH (UID 7 BODY[] {12}\r\nHello\r\nWorld FLAGS (\\Seen))\r\n";
  for (size_t a = 0; a <= in.size(); ++a) {
    for (size_t b = a; b <= in.size(); ++b) {
      std::vector<ImapResponse> r;
      Status s = ParseAll(in, {a, b}, &r);
      ASSERT_TRUE(s.ok()) << a << "," << b << ": " << s.ToString();
      ASSERT_EQ(r.size(), 1u);
      EXPECT_EQ(r[0].args[0].list[3].text, "Hello\r\nWorld");
      EXPECT_EQ(r[0].args[0].list[5].list[0].text, "\\Seen");
    }
  }
}

TEST(ImapParser, ByteAtATime) {
  const std::string in = kSample;
  std::vector<size_t> cuts;
  for (size_t i = 1; i < in.size(); ++i) cuts.push_back(i);
  std::vector<ImapResponse> r;
  ASSERT_TRUE(ParseAll(in, cuts, &r).ok());
  CheckSample(r);
}

TEST(ImapParser, ReportsLiteralBytesNeeded) {
  ImapParser p;
  p.Feed("* 1 FETCH (BODY[] {100}\r\nabc");
  ImapResponse r;
  ImapParser::Result res;
  ASSERT_TRUE(p.Next(&r, &res).ok());
  EXPECT_EQ(res, ImapParser::Result::kNeedMore);
  EXPECT_EQ(p.literal_bytes_needed(), 97u);
}

TEST(ImapParser, NestedListsAndNil) {
  std::vector<ImapResponse> r;
  ASSERT_TRUE(ParseAll("* 1 FETCH (BODYSTRUCTURE ((\"text\" NIL (\"a\" (\"b\" NIL))) nil))\r\n",
                       {}, &r).ok());
  const ImapValue& bs = r[0].args[0].list[1];
  ASSERT_TRUE(bs.is_list());
  EXPECT_TRUE(bs.list[1].is_nil());
  EXPECT_EQ(bs.list[0].list[2].list[1].list[0].text, "b");
}

TEST(ImapParser, MalformedInputIsCorruptionAndSticky) {
  const char* bad[] = {
      "* 1 FETCH (UID 7\r\n",              // unterminated list
      "* OK [CAPABILITY IMAP4rev1\r\n",    // unterminated code
      "* 1 FETCH (X \"abc)\r\n",           // unterminated quoted string
      "* 1 FETCH (X \"a\\qb\")\r\n",       // bad escape
      "* 1 FETCH (X {12x}\r\nabc)\r\n",    // bad literal size
      "m1 MAYBE done\r\n",                 // tagged but not OK/NO/BAD
      "*\r\n",                             // no name
      "* 1 FETCH (X a\x01b)\r\n",          // control character
      "* 1 FETCH (BODY[1 {3}\r\nabc)\r\n", // unterminated section
      "* 1 FETCH ())) extra\r\n",          // stray parenthesis
  };
  for (const char* in : bad) {
    ImapParser p;
    p.Feed(in);
    ImapResponse r;
    ImapParser::Result res;
    Status s = p.Next(&r, &res);
    EXPECT_TRUE(s.IsCorruption()) << in << " -> " << s.ToString();
    p.Feed("* OK fine\r\n");
    EXPECT_TRUE(p.Next(&r, &res).IsCorruption()) << "parser recovered after " << in;
  }
}

TEST(ImapParser, DeepNestingIsBounded) {
  ImapParserLimits lim;
  lim.max_depth = 8;
  std::string in = "* X " + std::string(9, '(') + std::string(9, ')') + "\r\n";
  std::vector<ImapResponse> r;
  EXPECT_TRUE(ParseAll(in, {}, &r, lim).IsCorruption());
  in = "* X " + std::string(8, '(') + std::string(8, ')') + "\r\n";
  r.clear();
  EXPECT_TRUE(ParseAll(in, {}, &r, lim).ok());
}

TEST(ImapParser, LineLimitIsCheckedBeforeTheLineEnds) {
  ImapParserLimits lim;
  lim.max_line_bytes = 100;
  ImapParser p(lim);
  ImapResponse r;
  ImapParser::Result res;
  p.Feed("* SEARCH " + std::string(85, '1'));
  ASSERT_TRUE(p.Next(&r, &res).ok());
  p.Feed("11111111");
  Status s = p.Next(&r, &res);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("line too long"), std::string::npos);
}

TEST(ImapParser, LiteralLimitIsCheckedBeforeBuffering) {
  ImapParserLimits lim;
  lim.max_literal_bytes = 1000;
  ImapParser p(lim);
  p.Feed("* 1 FETCH (BODY[] {1001}\r\n");
  ImapResponse r;
  ImapParser::Result res;
  Status s = p.Next(&r, &res);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("excessively large literal"), std::string::npos) << s.ToString();
  // A huge declared size is refused without any allocation.
  ImapParser q;
  q.Feed("* 1 FETCH (BODY[] {99999999999999}\r\n");
  EXPECT_TRUE(q.Next(&r, &res).IsCorruption());
}

TEST(ImapParser, ResponseLimitCountsLiterals) {
  ImapParserLimits lim;
  lim.max_response_bytes = 200;
  std::vector<ImapResponse> r;
  std::string in = "* 1 FETCH (A {100}\r\n" + std::string(100, 'x') + " B {100}\r\n" +
                   std::string(100, 'y') + ")\r\n";
  EXPECT_TRUE(ParseAll(in, {}, &r, lim).IsCorruption());
}

TEST(ImapParser, AstringQuotesOrUsesALiteral) {
  EXPECT_EQ(ImapAstring("INBOX"), "\"INBOX\"");
  EXPECT_EQ(ImapAstring("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(ImapAstring("a\r\nb"), "{4+}\r\na\r\nb");
  EXPECT_EQ(ImapAstring("\xc3\xa9"), "{2+}\r\n\xc3\xa9");
}

}  // namespace
}  // namespace mobilesync::agent::imap
