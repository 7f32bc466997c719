// Regex: the backtracking regular-expression engine behind the Split pre-tokenizer and the
// Replace normalizer/decoder, with the semantics of Oniguruma (which Hugging Face `tokenizers`
// uses): leftmost-first alternation, greedy/lazy/possessive quantifiers, Unicode classes.
//
// Supported syntax: literals and escapes (\t \n \r \f \v \e \0 \xHH \x{H..} \uHHHH, escaped
// punctuation), `.`, classes [...] with ranges, negation and nested escapes, \s \S \d \D \w \W,
// \p{..} / \P{..} / \pL with general categories (L, Lu, N, Nd, P, ...) and White_Space /
// Alphabetic, groups (...) (?:...) (?i:...) (?i) (?-i), atomic groups (?>...), lookahead
// (?=...) (?!...), quantifiers ? * + {n} {n,} {n,m} with lazy `?` and possessive `+`, anchors
// ^ $ \A \z \Z. Anything else (backreferences, lookbehind, scripts such as \p{Han}) is
// rejected at compile time with an error naming the construct and its offset.
// Thread-safety: a compiled Regex is immutable; matching uses per-call scratch space.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace tokenfab {

class Regex {
 public:
  static Result<Regex> Compile(std::string_view pattern);
  // A pattern that matches `literal` exactly (Split/Replace with a "String" pattern).
  static Regex Literal(std::string_view literal);

  // All non-overlapping matches, scanning left to right, as [begin, end) code point indices
  // into `text`. After an empty match the scan moves on one character (as Oniguruma's
  // find_iter in the Rust `onig` crate does).
  // ResourceExhausted if a match attempt backtracks pathologically (a step budget per start
  // position guards against catastrophic patterns).
  Status FindAll(std::u32string_view text, std::vector<std::pair<uint32_t, uint32_t>>* out) const;

  const std::string& pattern() const { return pattern_; }

  // Instruction and character-class representations; public for the compiler in regex.cc.
  struct ClassItem {
    uint32_t category_mask = 0;  // bit per unicode::Category
    uint8_t special = 0;         // 0 none, 1 White_Space, 2 word (\w), 3 Alphabetic, 4 any
    bool negate = false;
  };
  struct CharClass {
    bool negate = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;
    std::vector<ClassItem> items;
    bool case_insensitive = false;
    uint64_t ascii[2] = {0, 0};  // precomputed membership of U+0000..U+007F
    bool Contains(char32_t c) const;
    bool ContainsSlow(char32_t c) const;
  };
  enum class Op : uint8_t {
    kChar, kCharFold, kClass, kAny, kSplit, kJmp, kMatch, kLook, kAtomic, kSubEnd, kMark,
    kCheckProgress, kLineBegin, kLineEnd, kTextBegin, kTextEnd, kTextEndNewline,
  };
  struct Inst {
    Op op;
    bool negate = false;  // kLook: negative lookahead
    uint32_t a = 0;       // char, class index, jump target, first split target, register
    uint32_t b = 0;       // second split target; kLook/kAtomic: pc after the sub-program
  };

 private:
  friend class RegexCompiler;
  struct Scratch;
  // 1: matched (end set), 0: no match, -1: step budget exhausted.
  int Run(uint32_t pc, uint32_t pos, std::u32string_view text, Scratch* scratch,
          uint32_t* end) const;

  std::string pattern_;
  std::vector<Inst> program_;
  std::vector<CharClass> classes_;
  uint32_t num_registers_ = 0;
  std::u32string literal_;  // set for Literal(): matched by plain search
  bool is_literal_ = false;
};

}  // namespace tokenfab
