#include "sync_agent/imap/imap_parser.h"

#include <cctype>
#include <cstring>

namespace mobilesync::agent::imap {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (toupper(static_cast<unsigned char>(a[i])) !=
        toupper(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

bool IsStatusWord(std::string_view w) {
  return w == "OK" || w == "NO" || w == "BAD" || w == "BYE" || w == "PREAUTH";
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  return out;
}

// If `line` (without its line end) ends with "{N}" or "{N+}", stores N.
// Returns false if it does not end with a literal announcement, and sets
// *bad when it looks like one but is malformed (e.g. "{12x}").
bool LiteralAtLineEnd(std::string_view line, uint64_t* n, bool* bad) {
  *bad = false;
  if (line.empty() || line.back() != '}') return false;
  size_t open = line.rfind('{');
  if (open == std::string_view::npos) return false;
  std::string_view inner = line.substr(open + 1, line.size() - open - 2);
  if (!inner.empty() && inner.back() == '+') inner.remove_suffix(1);
  if (inner.empty() || inner.size() > 19) {
    *bad = true;
    return true;
  }
  uint64_t v = 0;
  for (char c : inner) {
    if (c < '0' || c > '9') {
      *bad = true;
      return true;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *n = v;
  return true;
}

// Pass 2: a cursor over one complete response.
class Tokenizer {
 public:
  Tokenizer(std::string_view text, size_t max_depth) : t_(text), max_depth_(max_depth) {}

  Status Parse(ImapResponse* out) {
    if (t_.empty()) return Bad("empty response");
    if (t_[0] == '+') {
      out->type = ImapResponse::Type::kContinuation;
      ++p_;
      if (Peek() == ' ') ++p_;
      return RestOfLine(&out->text);
    }
    std::string word;
    if (t_[0] == '*') {
      out->type = ImapResponse::Type::kUntagged;
      ++p_;
      Status s = Space();
      if (s.ok()) s = Word(&word);
      if (!s.ok()) return s;
      if (!word.empty() && word.size() <= 19 &&
          word.find_first_not_of("0123456789") == std::string::npos) {
        out->number = std::stoull(word);
        s = Space();
        if (s.ok()) s = Word(&word);
        if (!s.ok()) return s;
      }
      out->name = Upper(word);
      if (IsStatusWord(out->name)) return StatusRest(out);
      return Values(&out->args);
    }
    out->type = ImapResponse::Type::kTagged;
    Status s = Word(&out->tag);
    if (s.ok()) s = Space();
    if (s.ok()) s = Word(&word);
    if (!s.ok()) return s;
    out->name = Upper(word);
    if (out->name != "OK" && out->name != "NO" && out->name != "BAD")
      return Bad("tagged response is not OK, NO or BAD", out->name);
    return StatusRest(out);
  }

 private:
  char Peek() const { return p_ < t_.size() ? t_[p_] : '\0'; }
  bool AtLineEnd() const { return Peek() == '\r' || Peek() == '\n' || p_ >= t_.size(); }

  Status Bad(std::string_view what, std::string_view detail = {}) const {
    std::string where = "at byte " + std::to_string(p_);
    if (!detail.empty()) where = std::string(detail.substr(0, 64)) + " " + where;
    return Status::Corruption(std::string("IMAP response: ") + std::string(what), where);
  }

  Status Space() {
    if (Peek() != ' ') return Bad("expected a space");
    ++p_;
    return Status::OK();
  }

  // A bare word (tag, response name): up to a space or the line end.
  Status Word(std::string* out) {
    size_t b = p_;
    while (p_ < t_.size() && t_[p_] != ' ' && t_[p_] != '\r' && t_[p_] != '\n') ++p_;
    if (p_ == b) return Bad("expected a word");
    out->assign(t_.substr(b, p_ - b));
    return Status::OK();
  }

  Status RestOfLine(std::string* out) {
    size_t b = p_;
    while (p_ < t_.size() && t_[p_] != '\r' && t_[p_] != '\n') ++p_;
    out->assign(t_.substr(b, p_ - b));
    return End();
  }

  Status End() {
    if (Peek() == '\r') ++p_;
    if (Peek() != '\n') return Bad("expected the end of the line");
    ++p_;
    if (p_ != t_.size()) return Bad("data after the end of the response");
    return Status::OK();
  }

  // After "OK"/"NO"/...: [optional SP "[" code "]"] [SP text] CRLF.
  Status StatusRest(ImapResponse* out) {
    if (Peek() == ' ') ++p_;
    if (Peek() == '[') {
      ++p_;
      while (true) {
        while (Peek() == ' ') ++p_;
        if (Peek() == ']') {
          ++p_;
          break;
        }
        if (AtLineEnd()) return Bad("unterminated response code");
        ImapValue v;
        Status s = Value(&v, 1, /*in_code=*/true);
        if (!s.ok()) return s;
        out->code.push_back(std::move(v));
      }
      if (Peek() == ' ') ++p_;
    }
    return RestOfLine(&out->text);
  }

  // Values separated by spaces up to the end of the line.
  Status Values(std::vector<ImapValue>* out) {
    while (true) {
      while (Peek() == ' ') ++p_;
      if (AtLineEnd()) return End();
      ImapValue v;
      Status s = Value(&v, 1, false);
      if (!s.ok()) return s;
      out->push_back(std::move(v));
    }
  }

  Status Value(ImapValue* v, size_t depth, bool in_code) {
    char c = Peek();
    if (c == '(') return List(v, depth);
    if (c == '"') return Quoted(v);
    if (c == '{') return Literal(v);
    return Atom(v, in_code);
  }

  Status List(ImapValue* v, size_t depth) {
    if (depth > max_depth_) return Bad("lists nested too deeply");
    v->kind = ImapValue::Kind::kList;
    ++p_;  // '('
    while (true) {
      while (Peek() == ' ') ++p_;
      if (Peek() == ')') {
        ++p_;
        return Status::OK();
      }
      if (AtLineEnd()) return Bad("unterminated list");
      ImapValue item;
      Status s = Value(&item, depth + 1, false);
      if (!s.ok()) return s;
      v->list.push_back(std::move(item));
    }
  }

  Status Quoted(ImapValue* v) {
    v->kind = ImapValue::Kind::kString;
    ++p_;  // '"'
    while (true) {
      if (p_ >= t_.size()) return Bad("unterminated quoted string");
      char c = t_[p_++];
      if (c == '"') return Status::OK();
      if (c == '\r' || c == '\n') return Bad("line end inside a quoted string");
      if (c == '\\') {
        if (p_ >= t_.size()) return Bad("unterminated quoted string");
        c = t_[p_++];
        if (c != '\\' && c != '"') return Bad("bad escape in a quoted string");
      }
      v->text.push_back(c);
    }
  }

  Status Literal(ImapValue* v) {
    v->kind = ImapValue::Kind::kString;
    ++p_;  // '{'
    uint64_t n = 0;
    size_t digits = 0;
    while (isdigit(static_cast<unsigned char>(Peek()))) {
      if (++digits > 19) return Bad("literal size too long");
      n = n * 10 + static_cast<uint64_t>(Peek() - '0');
      ++p_;
    }
    if (digits == 0) return Bad("bad literal size");
    if (Peek() == '+') ++p_;
    if (Peek() != '}') return Bad("bad literal size");
    ++p_;
    if (Peek() == '\r') ++p_;
    if (Peek() != '\n') return Bad("literal size not at the end of a line");
    ++p_;
    if (n > t_.size() - p_) return Bad("truncated literal");
    v->text.assign(t_.substr(p_, n));
    p_ += n;
    return Status::OK();
  }

  // An atom, a number or NIL. A '[' inside an atom opens a section that runs
  // to the matching ']' and may hold spaces and lists (BODY[HEADER.FIELDS
  // (SUBJECT)]); a partial suffix like <0.100> follows it.
  Status Atom(ImapValue* v, bool in_code) {
    size_t b = p_;
    int bracket = 0;
    while (p_ < t_.size()) {
      char c = t_[p_];
      if (c == '\r' || c == '\n') break;
      if (bracket > 0) {
        if (c == '[') ++bracket;
        if (c == ']') --bracket;
        ++p_;
        continue;
      }
      if (c == ' ' || c == '(' || c == ')' || c == '"' || c == '{') break;
      if (c == ']' && in_code) break;
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return Bad("control character");
      if (c == '[' && p_ > b) ++bracket;  // a section only inside an atom
      ++p_;
    }
    if (bracket > 0) return Bad("unterminated section");
    if (p_ == b) return Bad("unexpected character", std::string(1, Peek()));
    std::string_view a = t_.substr(b, p_ - b);
    if (EqualsNoCase(a, "NIL")) {
      v->kind = ImapValue::Kind::kNil;
      return Status::OK();
    }
    v->kind = ImapValue::Kind::kAtom;
    v->text.assign(a);
    return Status::OK();
  }

  std::string_view t_;
  size_t p_ = 0;
  size_t max_depth_;
};

}  // namespace

bool ImapValue::IsAtom(std::string_view word) const {
  return kind == Kind::kAtom && EqualsNoCase(text, word);
}

bool ImapValue::ToNumber(uint64_t* out) const {
  if (kind != Kind::kAtom || text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool ImapResponse::IsStatus() const {
  return type == Type::kTagged || (type == Type::kUntagged && IsStatusWord(name));
}

std::string ImapResponse::CodeName() const {
  if (code.empty() || !code[0].is_atom()) return "";
  return Upper(code[0].text);
}

Status ImapParser::Fail(Status s) {
  error_ = s;
  buf_.clear();
  start_ = scan_ = line_start_ = 0;
  literal_left_ = 0;
  return s;
}

Status ImapParser::Scan(bool* complete) {
  *complete = false;
  while (true) {
    if (literal_left_ > 0) {
      size_t have = buf_.size() - scan_;
      size_t take = have < literal_left_ ? have : literal_left_;
      scan_ += take;
      literal_left_ -= take;
      if (literal_left_ > 0) return Status::OK();
      line_start_ = scan_;
    }
    size_t nl = buf_.find('\n', scan_);
    if (nl == std::string::npos) {
      scan_ = buf_.size();
      if (scan_ - line_start_ > limits_.max_line_bytes)
        return Status::Corruption("IMAP response line too long",
                                  std::to_string(scan_ - line_start_) + " bytes");
      if (scan_ - start_ > limits_.max_response_bytes)
        return Status::Corruption("IMAP response too large");
      return Status::OK();
    }
    size_t line_bytes = nl + 1 - line_start_;
    if (line_bytes > limits_.max_line_bytes)
      return Status::Corruption("IMAP response line too long",
                                std::to_string(line_bytes) + " bytes");
    std::string_view line(buf_.data() + line_start_, nl - line_start_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    scan_ = nl + 1;
    uint64_t n = 0;
    bool bad = false;
    if (LiteralAtLineEnd(line, &n, &bad)) {
      if (bad) return Status::Corruption("IMAP response: bad literal size");
      if (n > limits_.max_literal_bytes)
        return Status::Corruption("IMAP response: excessively large literal",
                                  std::to_string(n) + " bytes");
      if (scan_ - start_ + n > limits_.max_response_bytes)
        return Status::Corruption("IMAP response too large");
      literal_left_ = static_cast<size_t>(n);
      line_start_ = scan_;
      continue;
    }
    *complete = true;
    return Status::OK();
  }
}

Status ImapParser::Next(ImapResponse* out, Result* result) {
  if (!error_.ok()) return error_;
  bool complete = false;
  Status s = Scan(&complete);
  if (!s.ok()) return Fail(s);
  if (!complete) {
    *result = Result::kNeedMore;
    // Drop what earlier responses used so the buffer never holds more than
    // the response being framed.
    if (start_ > 0) {
      buf_.erase(0, start_);
      scan_ -= start_;
      line_start_ -= start_;
      start_ = 0;
    }
    return Status::OK();
  }
  *out = ImapResponse();
  s = ParseImapResponse(std::string_view(buf_).substr(start_, scan_ - start_),
                        limits_.max_depth, out);
  if (!s.ok()) return Fail(s);
  start_ = line_start_ = scan_;
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = scan_ = line_start_ = 0;
  }
  *result = Result::kResponse;
  return Status::OK();
}

Status ParseImapResponse(std::string_view text, size_t max_depth, ImapResponse* out) {
  Tokenizer t(text, max_depth);
  return t.Parse(out);
}

std::string ImapAstring(std::string_view s) {
  bool quotable = s.size() <= 1024;
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0' || static_cast<unsigned char>(c) >= 0x80) {
      quotable = false;
      break;
    }
  }
  if (!quotable) {
    std::string out = "{" + std::to_string(s.size()) + "+}\r\n";
    out.append(s.data(), s.size());
    return out;
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace mobilesync::agent::imap
