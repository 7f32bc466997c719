#include "tokenizer/regex.h"

#include <memory>

#include "tokenizer/unicode.h"

namespace tokenfab {
namespace {

using unicode::Category;

constexpr int kInfinite = -1;
constexpr int kMaxRepeatExpansion = 1000;  // {n,m} is expanded; cap the copies
constexpr uint64_t kStepBudget = 50'000'000;  // per start position

uint32_t CategoryBit(Category c) { return 1u << static_cast<int>(c); }
struct Node {
  enum Kind { kEmpty, kChar, kClass, kAny, kConcat, kAlt, kRepeat, kLook, kAtomic, kAssert };
  Kind kind = kEmpty;
  char32_t c = 0;
  bool fold = false;
  int cls = -1;
  int min = 0, max = 0;
  bool greedy = true;
  bool negate = false;
  Regex::Op assert_op = Regex::Op::kLineBegin;
  std::vector<std::unique_ptr<Node>> kids;
};

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Node::kEmpty: case Node::kLook: case Node::kAssert: return true;
    case Node::kChar: case Node::kClass: case Node::kAny: return false;
    case Node::kConcat:
      for (const auto& k : n.kids) if (!Nullable(*k)) return false;
      return true;
    case Node::kAlt:
      for (const auto& k : n.kids) if (Nullable(*k)) return true;
      return false;
    case Node::kRepeat: return n.min == 0 || Nullable(*n.kids[0]);
    case Node::kAtomic: return Nullable(*n.kids[0]);
  }
  return true;
}

}  // namespace

bool Regex::CharClass::ContainsSlow(char32_t c) const {
  bool in = false;
  for (const auto& [lo, hi] : ranges) {
    if (c >= lo && c <= hi) {
      in = true;
      break;
    }
  }
  if (!in) {
    const uint32_t bit = CategoryBit(unicode::GetCategory(c));
    for (const ClassItem& item : items) {
      bool m = (item.category_mask & bit) != 0;
      switch (item.special) {
        case 1: m = m || unicode::IsWhiteSpace(c); break;
        case 2: m = m || unicode::IsWordChar(c); break;
        case 3: m = m || unicode::IsAlphabetic(c); break;
        case 4: m = true; break;
        default: break;
      }
      if (m != item.negate) {
        in = true;
        break;
      }
    }
  }
  if (!in && case_insensitive) {
    const char32_t f = unicode::SimpleCaseFold(c);
    if (f != c) {
      CharClass plain = *this;
      plain.case_insensitive = false;
      plain.negate = false;
      in = plain.ContainsSlow(f);
    }
  }
  return in != negate;
}

bool Regex::CharClass::Contains(char32_t c) const {
  if (c < 128) return (ascii[c >> 6] >> (c & 63)) & 1;
  return ContainsSlow(c);
}

class RegexCompiler {
 public:
  explicit RegexCompiler(std::string_view pattern, Regex* re) : re_(re) {
    text_ = unicode::DecodeUtf8(pattern);
  }

  Status Compile() {
    std::unique_ptr<Node> root;
    TF_ASSIGN_OR_RETURN(root, ParseAlt(false));
    if (pos_ < text_.size()) return Error("unmatched ')'");
    Emit(*root);
    re_->program_.push_back({Regex::Op::kMatch});
    for (Regex::CharClass& cls : re_->classes_) {
      for (char32_t c = 0; c < 128; ++c) {
        if (cls.ContainsSlow(c)) cls.ascii[c >> 6] |= uint64_t{1} << (c & 63);
      }
    }
    return Status::Ok();
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgumentError("regex /" + re_->pattern_ + "/: " + std::string(what) +
                                " at offset " + std::to_string(pos_));
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char32_t Peek() const { return text_[pos_]; }
  bool Eat(char32_t c) {
    if (!AtEnd() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  Result<std::unique_ptr<Node>> ParseAlt(bool in_group) {
    auto alt = std::make_unique<Node>();
    alt->kind = Node::kAlt;
    const bool saved_fold = fold_;
    while (true) {
      std::unique_ptr<Node> branch;
      TF_ASSIGN_OR_RETURN(branch, ParseConcat());
      alt->kids.push_back(std::move(branch));
      if (Eat('|')) continue;
      break;
    }
    if (in_group) {
      if (!Eat(')')) return Error("missing ')'");
    }
    fold_ = saved_fold;  // (?i) applies to the end of the enclosing group
    if (alt->kids.size() == 1) return std::move(alt->kids[0]);
    return alt;
  }

  Result<std::unique_ptr<Node>> ParseConcat() {
    auto cat = std::make_unique<Node>();
    cat->kind = Node::kConcat;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      std::unique_ptr<Node> atom;
      TF_ASSIGN_OR_RETURN(atom, ParseAtom());
      if (!atom) continue;  // an inline option such as (?i)
      TF_ASSIGN_OR_RETURN(atom, ParseQuantifiers(std::move(atom)));
      cat->kids.push_back(std::move(atom));
    }
    return cat;
  }

  Result<std::unique_ptr<Node>> ParseQuantifiers(std::unique_ptr<Node> atom) {
    while (!AtEnd()) {
      int min, max;
      const size_t start = pos_;
      if (Eat('?')) { min = 0; max = 1; }
      else if (Eat('*')) { min = 0; max = kInfinite; }
      else if (Eat('+')) { min = 1; max = kInfinite; }
      else if (Peek() == '{') {
        ++pos_;
        auto number = [&](int* v) {
          if (AtEnd() || Peek() < '0' || Peek() > '9') return false;
          *v = 0;
          while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
            *v = *v * 10 + static_cast<int>(Peek() - '0');
            if (*v > 100000) return false;
            ++pos_;
          }
          return true;
        };
        if (!number(&min)) {  // not a quantifier: a literal '{' (Oniguruma does the same)
          pos_ = start;
          return atom;
        }
        max = min;
        if (Eat(',')) {
          if (!number(&max)) max = kInfinite;
        }
        if (!Eat('}')) {
          pos_ = start;
          return atom;
        }
        if (max != kInfinite && max < min) return Error("bad repeat range");
        if (std::max(min, max) > kMaxRepeatExpansion) return Error("repeat count too large");
      } else {
        break;
      }
      auto rep = std::make_unique<Node>();
      rep->kind = Node::kRepeat;
      rep->min = min;
      rep->max = max;
      if (Eat('?')) rep->greedy = false;
      const bool possessive = Eat('+');
      if (atom->kind == Node::kLook || atom->kind == Node::kAssert) {
        return Error("quantifier after an assertion");
      }
      rep->kids.push_back(std::move(atom));
      if (possessive) {
        auto at = std::make_unique<Node>();
        at->kind = Node::kAtomic;
        at->kids.push_back(std::move(rep));
        atom = std::move(at);
      } else {
        atom = std::move(rep);
      }
    }
    return atom;
  }

  std::unique_ptr<Node> CharNode(char32_t c) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kChar;
    n->fold = fold_;  // compare folded forms: 's' also matches 'S' and U+017F
    n->c = fold_ ? unicode::SimpleCaseFold(c) : c;
    return n;
  }

  std::unique_ptr<Node> ClassNode(Regex::CharClass cls) {
    cls.case_insensitive = fold_;
    if (fold_) {  // fold ASCII letter ranges both ways
      std::vector<std::pair<char32_t, char32_t>> extra;
      for (const auto& [lo, hi] : cls.ranges) {
        for (char32_t c = lo; c <= hi && c < 128; ++c) {
          if (c >= 'a' && c <= 'z') extra.push_back({c - 32, c - 32});
          if (c >= 'A' && c <= 'Z') extra.push_back({c + 32, c + 32});
        }
      }
      cls.ranges.insert(cls.ranges.end(), extra.begin(), extra.end());
    }
    auto n = std::make_unique<Node>();
    n->kind = Node::kClass;
    n->cls = static_cast<int>(re_->classes_.size());
    re_->classes_.push_back(std::move(cls));
    return n;
  }

  Result<std::unique_ptr<Node>> ParseAtom() {
    const char32_t c = Peek();
    ++pos_;
    switch (c) {
      case '(': return ParseGroup();
      case '[': {
        Regex::CharClass cls;
        TF_RETURN_IF_ERROR(ParseClass(&cls));
        return ClassNode(std::move(cls));
      }
      case '.': {
        auto n = std::make_unique<Node>();
        n->kind = Node::kAny;
        return n;
      }
      case '^': return AssertNode(Regex::Op::kLineBegin);
      case '$': return AssertNode(Regex::Op::kLineEnd);
      case '\\': return ParseEscapeAtom();
      case '*': case '+': case '?': pos_--; return Error("nothing to repeat");
      default: return CharNode(c);
    }
  }

  std::unique_ptr<Node> AssertNode(Regex::Op op) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kAssert;
    n->assert_op = op;
    return n;
  }

  Result<std::unique_ptr<Node>> ParseGroup() {
    if (!Eat('?')) {
      std::unique_ptr<Node> body;
      TF_ASSIGN_OR_RETURN(body, ParseAlt(true));
      return body;
    }
    if (AtEnd()) return Error("bad group");
    if (Eat(':')) return ParseAlt(true);
    if (Eat('=') || Peek() == '!') {
      bool negate = false;
      if (Eat('!')) negate = true;
      auto n = std::make_unique<Node>();
      n->kind = Node::kLook;
      n->negate = negate;
      std::unique_ptr<Node> body;
      TF_ASSIGN_OR_RETURN(body, ParseAlt(true));
      n->kids.push_back(std::move(body));
      return n;
    }
    if (Eat('>')) {
      auto n = std::make_unique<Node>();
      n->kind = Node::kAtomic;
      std::unique_ptr<Node> body;
      TF_ASSIGN_OR_RETURN(body, ParseAlt(true));
      n->kids.push_back(std::move(body));
      return n;
    }
    if (Peek() == '<') return Error("lookbehind and named groups are not supported");
    // Option flags: (?i) (?-i) (?i:...) (?i-x:...) ; only i is meaningful here.
    bool on = true, fold = fold_;
    while (!AtEnd() && Peek() != ')' && Peek() != ':') {
      const char32_t f = Peek();
      ++pos_;
      if (f == '-') on = false;
      else if (f == 'i') fold = on;
      else if (f == 'x' || f == 'm' || f == 's') return Error("unsupported regex option");
      else return Error("bad group");
    }
    if (AtEnd()) return Error("missing ')'");
    if (Eat(')')) {  // (?i): applies to the rest of the enclosing group
      fold_ = fold;
      return std::unique_ptr<Node>();
    }
    ++pos_;  // ':'
    const bool saved = fold_;
    fold_ = fold;
    std::unique_ptr<Node> body;
    TF_ASSIGN_OR_RETURN(body, ParseAlt(true));
    fold_ = saved;
    return body;
  }

  // Parses \p{Name} / \pL after the 'p' or 'P'; adds the item to `cls`.
  Status ParseProperty(bool negate, Regex::CharClass* cls) {
    std::string name;
    if (Eat('{')) {
      if (Eat('^')) negate = !negate;
      while (!AtEnd() && Peek() != '}') {
        if (Peek() > 127) return Error("bad property name");
        name.push_back(static_cast<char>(Peek()));
        ++pos_;
      }
      if (!Eat('}')) return Error("missing '}' in property");
    } else if (!AtEnd() && Peek() < 128) {
      name.push_back(static_cast<char>(Peek()));
      ++pos_;
    } else {
      return Error("bad property");
    }
    Regex::ClassItem item;
    item.negate = negate;
    bool known = false;
    // Resolve the name to a category mask by probing one code point per category.
    static constexpr char32_t kProbe[] = {
        0x0378, 'A', 'a', 0x01C5, 0x02B0, 0x05D0, 0x0300, 0x0903, 0x0488, '0', 0x16EE, 0x00B2,
        '_', '-', '(', ')', 0x00AB, 0x00BB, '!', '+', '$', '^', 0x00A6, ' ', 0x2028, 0x2029,
        0x0001, 0x00AD, 0xD800, 0xE000};
    static_assert(std::size(kProbe) == 30);
    for (int c = 0; c < 30; ++c) {
      const bool m = unicode::CategoryMatches(kProbe[c], name, &known);
      if (!known) break;
      if (m && static_cast<int>(unicode::GetCategory(kProbe[c])) == c) item.category_mask |= 1u << c;
    }
    if (!known) return Error("unsupported property \\p{" + name + "}");
    if (name == "White_Space" || name == "Space") item.special = 1, item.category_mask = 0;
    if (name == "Alphabetic" || name == "Alpha") item.special = 3, item.category_mask = 0;
    if (name == "Any") item.special = 4, item.category_mask = 0;
    cls->items.push_back(item);
    return Status::Ok();
  }

  // After a backslash: a class escape (adds to cls, returns true) or a literal character.
  Result<bool> ParseEscape(Regex::CharClass* cls, char32_t* literal) {
    if (AtEnd()) return Error("trailing backslash");
    const char32_t c = Peek();
    ++pos_;
    Regex::ClassItem item;
    switch (c) {
      case 's': case 'S': item.special = 1; item.negate = c == 'S'; cls->items.push_back(item); return true;
      case 'w': case 'W': item.special = 2; item.negate = c == 'W'; cls->items.push_back(item); return true;
      case 'd': case 'D':
        item.category_mask = CategoryBit(Category::kNd);
        item.negate = c == 'D';
        cls->items.push_back(item);
        return true;
      case 'h': case 'H':  // hex digit in Oniguruma
        if (c == 'h') {
          cls->ranges.push_back({'0', '9'});
          cls->ranges.push_back({'a', 'f'});
          cls->ranges.push_back({'A', 'F'});
          return true;
        }
        return Error("\\H is not supported");
      case 'p': case 'P': TF_RETURN_IF_ERROR(ParseProperty(c == 'P', cls)); return true;
      case 't': *literal = '\t'; return false;
      case 'n': *literal = '\n'; return false;
      case 'r': *literal = '\r'; return false;
      case 'f': *literal = '\f'; return false;
      case 'v': *literal = '\v'; return false;
      case 'a': *literal = 0x07; return false;
      case 'e': *literal = 0x1B; return false;
      case '0': *literal = 0; return false;
      case 'x': case 'u': {
        uint32_t v = 0;
        int digits = 0;
        const bool braced = c == 'x' && Eat('{');
        const int max_digits = braced ? 8 : (c == 'x' ? 2 : 4);
        while (!AtEnd() && digits < max_digits) {
          const char32_t h = Peek();
          int d;
          if (h >= '0' && h <= '9') d = static_cast<int>(h - '0');
          else if (h >= 'a' && h <= 'f') d = static_cast<int>(h - 'a' + 10);
          else if (h >= 'A' && h <= 'F') d = static_cast<int>(h - 'A' + 10);
          else break;
          v = v * 16 + static_cast<uint32_t>(d);
          ++digits;
          ++pos_;
        }
        if (braced && !Eat('}')) return Error("missing '}' in \\x{...}");
        if (digits == 0 || (c == 'u' && digits != 4) || v > 0x10FFFF) {
          return Error("bad hex escape");
        }
        *literal = v;
        return false;
      }
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '1' && c <= '9')) {
          return Error(std::string("unsupported escape \\") + static_cast<char>(c));
        }
        *literal = c;
        return false;
    }
  }

  Result<std::unique_ptr<Node>> ParseEscapeAtom() {
    if (!AtEnd()) {
      const char32_t c = Peek();
      if (c == 'A' || c == 'z' || c == 'Z') {
        ++pos_;
        return AssertNode(c == 'A' ? Regex::Op::kTextBegin
                                   : c == 'z' ? Regex::Op::kTextEnd : Regex::Op::kTextEndNewline);
      }
    }
    Regex::CharClass cls;
    char32_t literal = 0;
    bool is_class;
    TF_ASSIGN_OR_RETURN(is_class, ParseEscape(&cls, &literal));
    if (is_class) return ClassNode(std::move(cls));
    return CharNode(literal);
  }

  Status ParseClass(Regex::CharClass* cls) {
    if (Eat('^')) cls->negate = true;
    bool first = true;
    while (true) {
      if (AtEnd()) return Error("missing ']'");
      char32_t c = Peek();
      if (c == ']' && !first) {
        ++pos_;
        return Status::Ok();
      }
      first = false;
      if (c == '[') {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == ':') {
          return Error("POSIX bracket classes are not supported");
        }
        ++pos_;  // nested class: union
        Regex::CharClass inner;
        TF_RETURN_IF_ERROR(ParseClass(&inner));
        if (inner.negate) return Error("negated nested classes are not supported");
        cls->ranges.insert(cls->ranges.end(), inner.ranges.begin(), inner.ranges.end());
        cls->items.insert(cls->items.end(), inner.items.begin(), inner.items.end());
        continue;
      }
      if (c == '&' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '&') {
        return Error("class intersection is not supported");
      }
      ++pos_;
      char32_t lo = c;
      if (c == '\\') {
        bool is_class;
        TF_ASSIGN_OR_RETURN(is_class, ParseEscape(cls, &lo));
        if (is_class) continue;
      }
      char32_t hi = lo;
      if (pos_ + 1 < text_.size() && Peek() == '-' && text_[pos_ + 1] != ']') {
        ++pos_;
        hi = Peek();
        ++pos_;
        if (hi == '\\') {
          bool is_class;
          TF_ASSIGN_OR_RETURN(is_class, ParseEscape(cls, &hi));
          if (is_class) return Error("bad class range");
        } else if (hi == '[') {
          return Error("bad class range");
        }
        if (hi < lo) return Error("bad class range");
      }
      cls->ranges.push_back({lo, hi});
    }
  }

  uint32_t Pc() const { return static_cast<uint32_t>(re_->program_.size()); }
  uint32_t Add(Regex::Inst in) {
    re_->program_.push_back(in);
    return Pc() - 1;
  }

  void Emit(const Node& n) {
    using Op = Regex::Op;
    switch (n.kind) {
      case Node::kEmpty: return;
      case Node::kChar: Add({n.fold ? Op::kCharFold : Op::kChar, false, n.c}); return;
      case Node::kClass: Add({Op::kClass, false, static_cast<uint32_t>(n.cls)}); return;
      case Node::kAny: Add({Op::kAny}); return;
      case Node::kAssert: Add({n.assert_op}); return;
      case Node::kConcat:
        for (const auto& k : n.kids) Emit(*k);
        return;
      case Node::kAlt: {
        std::vector<uint32_t> jumps;
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i + 1 < n.kids.size()) {
            const uint32_t split = Add({Op::kSplit});
            re_->program_[split].a = Pc();
            Emit(*n.kids[i]);
            jumps.push_back(Add({Op::kJmp}));
            re_->program_[split].b = Pc();
          } else {
            Emit(*n.kids[i]);
          }
        }
        for (uint32_t j : jumps) re_->program_[j].a = Pc();
        return;
      }
      case Node::kLook: case Node::kAtomic: {
        const uint32_t head = Add({n.kind == Node::kLook ? Op::kLook : Op::kAtomic, n.negate});
        Emit(*n.kids[0]);
        Add({Op::kSubEnd});
        re_->program_[head].b = Pc();
        return;
      }
      case Node::kRepeat: {
        const Node& body = *n.kids[0];
        for (int i = 0; i < n.min; ++i) Emit(body);
        if (n.max == kInfinite) {
          const bool guard = Nullable(body);
          const uint32_t reg = guard ? re_->num_registers_++ : 0;
          const uint32_t loop = Add({Op::kSplit});
          const uint32_t body_pc = Pc();
          if (guard) Add({Op::kMark, false, reg});
          Emit(body);
          if (guard) Add({Op::kCheckProgress, false, reg});
          Add({Op::kJmp, false, loop});
          SetSplit(loop, body_pc, Pc(), n.greedy);
        } else {
          std::vector<uint32_t> splits;
          for (int i = n.min; i < n.max; ++i) {
            splits.push_back(Add({Op::kSplit}));
            re_->program_[splits.back()].a = Pc();
            Emit(body);
          }
          for (uint32_t s : splits) SetSplit(s, re_->program_[s].a, Pc(), n.greedy);
        }
        return;
      }
    }
  }

  void SetSplit(uint32_t split, uint32_t body, uint32_t out, bool greedy) {
    re_->program_[split].a = greedy ? body : out;
    re_->program_[split].b = greedy ? out : body;
  }

  Regex* re_;
  std::u32string text_;
  size_t pos_ = 0;
  bool fold_ = false;
};

struct Regex::Scratch {
  struct Frame {
    uint32_t pc;
    uint32_t pos;
    uint32_t reg;  // UINT32_MAX: a backtrack point; else a register to restore to `pos`
  };
  std::vector<Frame> stack;
  std::vector<uint32_t> registers;
  uint64_t steps = 0;
};

Result<Regex> Regex::Compile(std::string_view pattern) {
  Regex re;
  re.pattern_ = std::string(pattern);
  RegexCompiler compiler(pattern, &re);
  TF_RETURN_IF_ERROR(compiler.Compile());
  return re;
}

Regex Regex::Literal(std::string_view literal) {
  Regex re;
  re.pattern_ = std::string(literal);
  re.is_literal_ = true;
  re.literal_ = unicode::DecodeUtf8(literal);
  return re;
}

int Regex::Run(uint32_t pc, uint32_t pos, std::u32string_view text, Scratch* s,
               uint32_t* end) const {
  const size_t base = s->stack.size();
  const uint32_t n = static_cast<uint32_t>(text.size());
  constexpr uint32_t kBacktrack = UINT32_MAX;
  while (true) {
    if (++s->steps > kStepBudget) {
      s->stack.resize(base);
      return -1;
    }
    const Inst& in = program_[pc];
    bool ok = true;
    switch (in.op) {
      case Op::kChar: ok = pos < n && text[pos] == in.a; if (ok) ++pos, ++pc; break;
      case Op::kCharFold:
        ok = pos < n && unicode::SimpleCaseFold(text[pos]) == in.a;
        if (ok) ++pos, ++pc;
        break;
      case Op::kClass: ok = pos < n && classes_[in.a].Contains(text[pos]); if (ok) ++pos, ++pc; break;
      case Op::kAny: ok = pos < n && text[pos] != '\n'; if (ok) ++pos, ++pc; break;
      case Op::kSplit:
        s->stack.push_back({in.b, pos, kBacktrack});
        pc = in.a;
        break;
      case Op::kJmp: pc = in.a; break;
      case Op::kMatch: case Op::kSubEnd:
        *end = pos;
        s->stack.resize(base);
        return 1;
      case Op::kLook: case Op::kAtomic: {
        uint32_t sub_end = 0;
        const int r = Run(pc + 1, pos, text, s, &sub_end);
        if (r < 0) {
          s->stack.resize(base);
          return -1;
        }
        if (in.op == Op::kLook) {
          ok = (r == 1) != in.negate;
        } else {
          ok = r == 1;
          if (ok) pos = sub_end;
        }
        if (ok) pc = in.b;
        break;
      }
      case Op::kMark:
        s->stack.push_back({0, s->registers[in.a], in.a});
        s->registers[in.a] = pos;
        ++pc;
        break;
      case Op::kCheckProgress: ok = s->registers[in.a] != pos; if (ok) ++pc; break;
      case Op::kLineBegin: ok = pos == 0 || text[pos - 1] == '\n'; if (ok) ++pc; break;
      case Op::kLineEnd: ok = pos == n || text[pos] == '\n'; if (ok) ++pc; break;
      case Op::kTextBegin: ok = pos == 0; if (ok) ++pc; break;
      case Op::kTextEnd: ok = pos == n; if (ok) ++pc; break;
      case Op::kTextEndNewline: ok = pos == n || (pos + 1 == n && text[pos] == '\n'); if (ok) ++pc; break;
    }
    if (ok) continue;
    // Backtrack: restore registers until the most recent choice point.
    while (true) {
      if (s->stack.size() == base) return 0;
      const Scratch::Frame f = s->stack.back();
      s->stack.pop_back();
      if (f.reg != kBacktrack) {
        s->registers[f.reg] = f.pos;
        continue;
      }
      pc = f.pc;
      pos = f.pos;
      break;
    }
  }
}

Status Regex::FindAll(std::u32string_view text,
                      std::vector<std::pair<uint32_t, uint32_t>>* out) const {
  out->clear();
  const uint32_t n = static_cast<uint32_t>(text.size());
  if (is_literal_) {
    if (literal_.empty()) return Status::Ok();
    for (size_t at = text.find(literal_); at != std::u32string_view::npos;
         at = text.find(literal_, at + literal_.size())) {
      out->push_back({static_cast<uint32_t>(at), static_cast<uint32_t>(at + literal_.size())});
    }
    return Status::Ok();
  }
  Scratch scratch;
  scratch.registers.assign(num_registers_, UINT32_MAX);
  uint32_t pos = 0;
  bool last_was_empty_at = false;
  uint32_t last_end = UINT32_MAX;
  while (pos <= n) {
    uint32_t found_start = 0, found_end = 0;
    bool found = false;
    for (uint32_t start = pos; start <= n; ++start) {
      scratch.steps = 0;
      uint32_t end = 0;
      const int r = Run(0, start, text, &scratch, &end);
      if (r < 0) {
        return ResourceExhaustedError("regex /" + pattern_ +
                                      "/ backtracks too much on this input");
      }
      if (r == 1) {
        found = true;
        found_start = start;
        found_end = end;
        break;
      }
    }
    if (!found) break;
    // An empty match right where the previous match ended is skipped (no infinite loop).
    if (found_end == found_start && last_end == found_end) {
      pos = found_start + 1;
      continue;
    }
    (void)last_was_empty_at;
    out->push_back({found_start, found_end});
    last_end = found_end;
    pos = found_end == found_start ? found_end + 1 : found_end;
    if (found_end == found_start && found_end == n) break;
  }
  return Status::Ok();
}

}  // namespace tokenfab
