// Unicode for the tokenizer: UTF-8 decoding with replacement, general categories and the
// properties the pre-tokenizer regexes ask for, simple case folding, and the four
// normalization forms (NFC, NFD, NFKC, NFKD).
//
// Data comes from unicode_tables.inc, generated from the Unicode Character Database by
// gen_unicode_tables.py. Invalid UTF-8 is never passed through: it is replaced with U+FFFD,
// one per maximal ill-formed subpart (the Unicode-recommended practice, which is also what
// Rust's String::from_utf8_lossy and Python's bytes.decode(errors="replace") do, so text
// reaches tokenfab exactly as it reaches Hugging Face `tokenizers`).
// Thread-safety: pure functions over constant tables.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokenfab::unicode {

inline constexpr char32_t kReplacementChar = 0xFFFD;

enum class Category : uint8_t {
  kCn, kLu, kLl, kLt, kLm, kLo, kMn, kMc, kMe, kNd, kNl, kNo, kPc, kPd, kPs, kPe, kPi, kPf, kPo,
  kSm, kSc, kSk, kSo, kZs, kZl, kZp, kCc, kCf, kCs, kCo,
};

Category GetCategory(char32_t cp);
// One- or two-letter category names ("L", "Lu", "N", ...), as in \p{...}; false if unknown.
bool CategoryMatches(char32_t cp, std::string_view name, bool* known);

bool IsLetter(char32_t cp);      // \p{L}
bool IsNumber(char32_t cp);      // \p{N}
bool IsMark(char32_t cp);        // \p{M}
bool IsPunctuation(char32_t cp); // \p{P}
bool IsSymbol(char32_t cp);      // \p{S}
bool IsWhiteSpace(char32_t cp);  // White_Space property (regex \s)
bool IsAlphabetic(char32_t cp);  // Alphabetic property
bool IsDigit(char32_t cp);       // \p{Nd} (regex \d)
bool IsWordChar(char32_t cp);    // regex \w: Alphabetic, M, Nd, Pc, Join_Control

char32_t SimpleCaseFold(char32_t cp);
char32_t SimpleLowercase(char32_t cp);

// Decodes UTF-8, replacing ill-formed subparts with U+FFFD. `byte_offsets`, if given, gets the
// byte offset of each code point plus a final entry for the end.
std::u32string DecodeUtf8(std::string_view text, std::vector<uint32_t>* byte_offsets = nullptr);
void AppendUtf8(char32_t cp, std::string* out);
std::string EncodeUtf8(std::u32string_view text);
bool IsValidUtf8(std::string_view text);
// `text` with ill-formed subparts replaced by U+FFFD (a copy of `text` when it is valid).
std::string SanitizeUtf8(std::string_view text);
// Length of the longest prefix of `bytes` that ends on a complete UTF-8 character, treating
// ill-formed bytes as complete (they decode to U+FFFD) but holding back a trailing sequence
// that could still be completed by more bytes.
size_t CompleteUtf8Prefix(std::string_view bytes);

enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };
std::string Normalize(std::string_view text, NormalizationForm form);

}  // namespace tokenfab::unicode
