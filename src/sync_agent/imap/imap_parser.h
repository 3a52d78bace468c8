// An incremental, bounded parser of IMAP server responses (RFC 3501 and the
// extensions the agent uses: LITERAL+, CONDSTORE, UIDPLUS, METADATA).
//
// Bytes go in as they arrive, in any split; whole responses come out. The
// parser works in two passes, the way isync's LIST_PARTIAL does its resumable
// parsing, but without re-scanning what it has already seen:
//
//   1. Framing (resumable): find where the response ends. A response is a
//      line ending in CRLF, except that a line ending in "{N}" or "{N+}" is
//      followed by N literal bytes and continues after them. The scanner keeps
//      its position and the literal bytes still owed, so each input byte is
//      looked at once however the input is split. Line and literal sizes are
//      checked here, BEFORE the bytes are buffered ("literal too large").
//   2. Tokenising (one pass over a complete response): atoms, numbers, NIL,
//      quoted strings, literals, nested parenthesised lists, and atoms with a
//      bracketed section such as BODY[HEADER.FIELDS (SUBJECT)]. Status
//      responses (OK/NO/BAD/BYE/PREAUTH) keep their [CODE ...] apart and their
//      human text raw, so an apostrophe or quote in the text is harmless.
//
// After an error the parser stays failed: a stream that lost its framing
// cannot be trusted again, the connection must be closed.
#ifndef MOBILESYNC_SYNC_AGENT_IMAP_IMAP_PARSER_H_
#define MOBILESYNC_SYNC_AGENT_IMAP_IMAP_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mobilesync::agent::imap {

// One token of a response. Lists nest.
struct ImapValue {
  enum class Kind { kAtom, kString, kNil, kList };
  Kind kind = Kind::kAtom;
  // kAtom: the atom's text (numbers are atoms); kString: the decoded
  // quoted string or the literal's bytes.
  std::string text;
  std::vector<ImapValue> list;  // kList

  bool is_atom() const { return kind == Kind::kAtom; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_nil() const { return kind == Kind::kNil; }
  bool is_list() const { return kind == Kind::kList; }
  // Atom or string (NIL is not text).
  bool is_text() const { return kind == Kind::kAtom || kind == Kind::kString; }
  // Case-insensitive comparison of an atom with `word`.
  bool IsAtom(std::string_view word) const;
  // A number (atom of 1..20 digits that fits in 64 bits).
  bool ToNumber(uint64_t* out) const;
};

struct ImapResponse {
  enum class Type { kUntagged, kTagged, kContinuation };
  Type type = Type::kUntagged;
  std::string tag;                // kTagged only
  std::optional<uint64_t> number; // "* 12 EXISTS", "* 3 FETCH (...)"
  std::string name;               // upper-cased: OK, NO, BAD, BYE, PREAUTH,
                                  // CAPABILITY, FETCH, LIST, METADATA, ...
  std::vector<ImapValue> args;    // the tokens after the name (not status)
  std::vector<ImapValue> code;    // status only: tokens of [CODE ...]
  std::string text;               // status and continuation: the text

  bool IsStatus() const;
  // The response code name ("APPENDUID", "UIDVALIDITY", ...) or "".
  std::string CodeName() const;
};

struct ImapParserLimits {
  // Bytes of one line (between literals), CRLF included. Long SEARCH or
  // FETCH lines are the largest a server sends to us.
  size_t max_line_bytes = 1 << 20;
  // One literal (a message body). Messages above this cannot be synced.
  size_t max_literal_bytes = 64 << 20;
  // A whole response, literals included.
  size_t max_response_bytes = 96 << 20;
  // Nesting of parenthesised lists (BODYSTRUCTURE nests deepest).
  size_t max_depth = 64;
};

class ImapParser {
 public:
  enum class Result { kResponse, kNeedMore };

  explicit ImapParser(ImapParserLimits limits = {}) : limits_(limits) {}
  ImapParser(const ImapParser&) = delete;
  ImapParser& operator=(const ImapParser&) = delete;

  // Appends `data` to the input buffer (bytes of any split). Fails if the
  // parser already failed.
  void Feed(std::string_view data) { buf_.append(data.data(), data.size()); }

  // Extracts the next complete response from what was fed. On OK,
  // *result says whether *out holds a response or more input is needed.
  // On failure (Corruption, naming the problem) every later call fails.
  [[nodiscard]] Status Next(ImapResponse* out, Result* result);

  // When Next() said kNeedMore inside a literal: how many more bytes the
  // literal needs (a reader can wait for that many), else 0.
  size_t literal_bytes_needed() const { return literal_left_; }
  // Bytes buffered and not yet returned as responses.
  size_t buffered() const { return buf_.size() - start_; }
  const Status& error() const { return error_; }

 private:
  Status Fail(Status s);
  // Pass 1: advances scan_ over buf_. Returns true when a whole response
  // ends at scan_.
  Status Scan(bool* complete);

  ImapParserLimits limits_;
  Status error_;
  std::string buf_;
  size_t start_ = 0;       // first byte of the response being framed
  size_t scan_ = 0;        // first byte not yet scanned
  size_t line_start_ = 0;  // first byte of the current line (after a literal)
  size_t literal_left_ = 0;
};

// Pass 2, exposed for tests: tokenises one complete response (CRLF
// included). REQUIRES: `text` was framed by ImapParser (literals complete).
[[nodiscard]] Status ParseImapResponse(std::string_view text, size_t max_depth,
                                       ImapResponse* out);

// Writes `s` as an IMAP quoted string if it can be one (no CR, LF, NUL, and
// at most 1024 bytes), else as a LITERAL+ literal "{N+}\r\n<bytes>".
std::string ImapAstring(std::string_view s);

}  // namespace mobilesync::agent::imap

#endif  // MOBILESYNC_SYNC_AGENT_IMAP_IMAP_PARSER_H_
