#include "tokenizer/jinja_lexer.h"

#include "tokenizer/unicode.h"

namespace tokenfab::jinja {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.isspace over a line fragment (no newlines in it).
bool AllWhitespace(std::string_view s) {
  if (s.empty()) return false;
  for (char32_t c : unicode::DecodeUtf8(s)) {
    if (!unicode::IsWhiteSpace(c) && !(c >= 0x1C && c <= 0x1F)) return false;
  }
  return true;
}

void RStrip(std::string* s) {
  // Python str.rstrip(): Unicode whitespace.
  const std::u32string cps = unicode::DecodeUtf8(*s);
  size_t e = cps.size();
  while (e > 0 && (unicode::IsWhiteSpace(cps[e - 1]) || (cps[e - 1] >= 0x1C && cps[e - 1] <= 0x1F))) --e;
  *s = unicode::EncodeUtf8(std::u32string_view(cps).substr(0, e));
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  Result<std::vector<Token>> Run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = FindTagStart(pos_);
      std::string text = src_.substr(pos_, tag - pos_);
      const int text_line = line_;
      Advance(tag);
      if (tag == src_.size()) {
        Emit(Token::kText, std::move(text), text_line);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char ctl = tag + 2 < src_.size() ? src_[tag + 2] : 0;
      if (ctl == '-') {
        RStrip(&text);
      } else if (ctl != '+' && kind != '{') {  // lstrip_blocks
        const size_t l_pos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if ((l_pos > 0 || line_starting) && AllWhitespace(std::string_view(text).substr(l_pos))) {
          text.resize(l_pos);
        }
      }
      Emit(Token::kText, std::move(text), text_line);
      Advance(tag + 2 + ((ctl == '-' || ctl == '+') ? 1 : 0));
      if (kind == '#') {
        const size_t end = src_.find("#}", pos_);
        if (end == std::string::npos) return Error("missing end of comment tag");
        const char before = end > pos_ ? src_[end - 1] : 0;
        Advance(end + 2);
        line_starting = FinishTag(before == '-', before == '+', true);
        continue;
      }
      const bool block = kind == '%';
      Emit(block ? Token::kBlockBegin : Token::kVarBegin, "", line_);
      const size_t first_inner = tokens_.size();
      bool strip = false, plus = false;
      depth_ = 0;
      TF_RETURN_IF_ERROR(LexInside(block, &strip, &plus));
      Emit(block ? Token::kBlockEnd : Token::kVarEnd, "", line_);
      line_starting = FinishTag(strip, plus, block);
      if (block && tokens_.size() == first_inner + 2 && tokens_[first_inner].kind == Token::kName &&
          tokens_[first_inner].text == "raw") {
        TF_RETURN_IF_ERROR(LexRaw(&line_starting));
      }
    }
    tokens_.push_back({Token::kEof, "", line_});
    return std::move(tokens_);
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgumentError("template line " + std::to_string(line_) + ": " + what);
  }

  void Advance(size_t to) {
    for (size_t i = pos_; i < to && i < src_.size(); ++i) {
      if (src_[i] == '\n') ++line_;
    }
    pos_ = to;
  }

  void Emit(Token::Kind kind, std::string text, int line) {
    if (kind == Token::kText && text.empty()) return;
    tokens_.push_back({kind, std::move(text), line});
  }

  size_t FindTagStart(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  // After a tag's closing delimiter: `-` strips following whitespace, a block tag without `+`
  // eats one newline. Returns whether the consumed text ended with a newline.
  bool FinishTag(bool strip, bool plus, bool block) {
    if (strip) {
      size_t e = pos_;
      while (e < src_.size() && IsSpace(src_[e])) ++e;
      const bool nl = e > pos_ && src_[e - 1] == '\n';
      Advance(e);
      return nl;
    }
    if (block && !plus && pos_ < src_.size() && src_[pos_] == '\n') {
      Advance(pos_ + 1);
      return true;
    }
    return false;
  }

  Status LexInside(bool block, bool* strip, bool* plus) {
    const char close = block ? '%' : '}';
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) Advance(pos_ + 1);
      if (pos_ >= src_.size()) return Error(block ? "missing '%}'" : "missing '}}'");
      auto at = [&](std::string_view s) { return src_.compare(pos_, s.size(), s) == 0; };
      const std::string end = std::string(1, close) + "}";
      if (depth_ > 0) {  // inside brackets "}}" closes a dict, not the tag (as in Jinja2)
        TF_RETURN_IF_ERROR(LexToken());
        continue;
      }
      if (at("-" + end)) {
        *strip = true;
        Advance(pos_ + 3);
        return Status::Ok();
      }
      if (at("+" + end) && block) {
        *plus = true;
        Advance(pos_ + 3);
        return Status::Ok();
      }
      if (at(end)) {
        Advance(pos_ + 2);
        return Status::Ok();
      }
      TF_RETURN_IF_ERROR(LexToken());
    }
  }

  Status LexToken() {
    const char c = src_[pos_];
    const int line = line_;
    if (c == '\'' || c == '"') return LexString(c);
    if (c >= '0' && c <= '9') {
      size_t e = pos_;
      auto digits = [&] {
        const size_t s = e;
        while (e < src_.size() && ((src_[e] >= '0' && src_[e] <= '9') || (src_[e] == '_' && e > s))) ++e;
        return e > s;
      };
      digits();
      bool is_float = false;
      if (e + 1 < src_.size() && src_[e] == '.' && src_[e + 1] >= '0' && src_[e + 1] <= '9') {
        ++e;
        digits();
        is_float = true;
      }
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t save = e;
        ++e;
        if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
        if (digits()) is_float = true;
        else e = save;
      }
      std::string num;
      for (size_t i = pos_; i < e; ++i) if (src_[i] != '_') num.push_back(src_[i]);
      tokens_.push_back({is_float ? Token::kFloat : Token::kInt, num, line});
      Advance(e);
      return Status::Ok();
    }
    if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      size_t e = pos_;
      while (e < src_.size() && (src_[e] == '_' || std::isalnum(static_cast<unsigned char>(src_[e])))) ++e;
      tokens_.push_back({Token::kName, src_.substr(pos_, e - pos_), line});
      Advance(e);
      return Status::Ok();
    }
    static constexpr std::string_view kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*",
                                                "/", "%", "~", "<", ">", "=", ".", ",", ":", "|",
                                                "(", ")", "[", "]", "{", "}"};
    for (std::string_view op : kOps) {
      if (src_.compare(pos_, op.size(), op) == 0) {
        if (op == "(" || op == "[" || op == "{") ++depth_;
        if ((op == ")" || op == "]" || op == "}") && depth_ > 0) --depth_;
        tokens_.push_back({Token::kOp, std::string(op), line});
        Advance(pos_ + op.size());
        return Status::Ok();
      }
    }
    return Error(std::string("unexpected character '") + c + "'");
  }

  Status LexString(char quote) {
    std::string out;
    size_t i = pos_ + 1;
    auto hex = [&](size_t n, uint32_t* v) {
      *v = 0;
      for (size_t k = 0; k < n; ++k) {
        if (i + k >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[i + k]))) return false;
        const char h = src_[i + k];
        *v = *v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
      }
      i += n;
      return true;
    };
    while (true) {
      if (i >= src_.size()) return Error("unterminated string");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) return Error("unterminated string");
      const char e = src_[i + 1];
      i += 2;
      uint32_t v;
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'v': out.push_back('\v'); break;
        case '\n': break;
        case 'x': if (!hex(2, &v)) return Error("bad \\x escape"); unicode::AppendUtf8(v, &out); break;
        case 'u': if (!hex(4, &v)) return Error("bad \\u escape"); unicode::AppendUtf8(v, &out); break;
        case 'U':
          if (!hex(8, &v) || v > 0x10FFFF) return Error("bad \\U escape");
          unicode::AppendUtf8(v, &out);
          break;
        default:
          if (e >= '0' && e <= '7') {
            v = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i) {
              v = v * 8 + static_cast<uint32_t>(src_[i] - '0');
            }
            unicode::AppendUtf8(v, &out);
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    tokens_.push_back({Token::kString, std::move(out), line_});
    Advance(i + 1);
    return Status::Ok();
  }

  // Text up to {% endraw %} is kept verbatim.
  Status LexRaw(bool* line_starting) {
    size_t search = pos_;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string::npos) return Error("missing {% endraw %}");
      size_t i = open + 2;
      const char ctl = i < src_.size() ? src_[i] : 0;
      if (ctl == '-' || ctl == '+') ++i;
      while (i < src_.size() && IsSpace(src_[i])) ++i;
      if (src_.compare(i, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      i += 6;
      while (i < src_.size() && IsSpace(src_[i])) ++i;
      bool strip = false, plus = false;
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) {
        strip = src_[i] == '-';
        plus = src_[i] == '+';
        ++i;
      }
      if (src_.compare(i, 2, "%}") != 0) return Error("bad endraw tag");
      std::string text = src_.substr(pos_, open - pos_);
      if (ctl == '-') RStrip(&text);
      Emit(Token::kText, std::move(text), line_);
      Advance(i + 2);
      *line_starting = FinishTag(strip, plus, true);
      tokens_.push_back({Token::kBlockBegin, "", line_});
      tokens_.push_back({Token::kName, "endraw", line_});
      tokens_.push_back({Token::kBlockEnd, "", line_});
      return Status::Ok();
    }
  }

  std::string src_;
  int depth_ = 0;  // open brackets inside the current tag
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> Lex(std::string_view source) {
  // Newlines are normalized to \n and one trailing newline is dropped (keep_trailing_newline
  // is off), as Jinja2's lexer does.
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src.push_back(source[i]);
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  return Lexer(std::move(src)).Run();
}

}  // namespace tokenfab::jinja
