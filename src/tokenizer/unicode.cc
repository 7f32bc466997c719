#include "tokenizer/unicode.h"

#include <algorithm>

namespace tokenfab::unicode {
namespace {

#include "tokenizer/unicode_tables.inc"

constexpr char32_t kMaxCodePoint = 0x10FFFF;

inline uint8_t Props(char32_t cp) {
  if (cp > kMaxCodePoint) return 0;
  return kCategoryBlocks[static_cast<size_t>(kCategoryStage1[cp >> 8]) * 256 + (cp & 0xFF)];
}

constexpr uint8_t kAlphabeticBit = 0x20;
constexpr uint8_t kWhiteSpaceBit = 0x40;

// Hangul syllable composition constants (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
              kSCount = kLCount * kNCount;

uint8_t CombiningClassOf(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + std::size(kCombiningClasses);
  const auto* it = std::lower_bound(kCombiningClasses, end, cp,
                                    [](const CombiningClass& e, char32_t c) { return e.cp < c; });
  return it != end && it->cp == cp ? it->ccc : 0;
}

char32_t LookupMapping(const CaseMapping* begin, const CaseMapping* end, char32_t cp) {
  const auto* it =
      std::lower_bound(begin, end, cp, [](const CaseMapping& e, char32_t c) { return e.from < c; });
  return it != end && it->from == cp ? it->to : cp;
}

void DecomposeOne(char32_t cp, bool compat, std::u32string* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const int s = static_cast<int>(cp - kSBase);
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (cp < 0xA0) {
    out->push_back(cp);
    return;
  }
  const auto* end = kDecompositions + std::size(kDecompositions);
  const auto* it = std::lower_bound(kDecompositions, end, cp,
                                    [](const Decomposition& e, char32_t c) { return e.cp < c; });
  const Decomposition* chosen = nullptr;
  for (; it != end && it->cp == cp; ++it) {
    if (it->compat == 0 && !chosen) chosen = it;
    if (it->compat == 1 && compat) chosen = it;
  }
  if (!chosen) {
    out->push_back(cp);
    return;
  }
  for (int i = 0; i < chosen->length; ++i) out->push_back(kDecompositionPool[chosen->offset + i]);
}

// The primary composite of (a, b), or 0.
char32_t Compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto* end = kCompositions + std::size(kCompositions);
  const auto* it = std::lower_bound(kCompositions, end, std::pair<char32_t, char32_t>(a, b),
                                    [](const Composition& e, const std::pair<char32_t, char32_t>& k) {
                                      return e.first < k.first ||
                                             (e.first == k.first && e.second < k.second);
                                    });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

}  // namespace

Category GetCategory(char32_t cp) { return static_cast<Category>(Props(cp) & 0x1F); }

bool CategoryMatches(char32_t cp, std::string_view name, bool* known) {
  *known = true;
  const char* full = kCategoryNames[static_cast<int>(GetCategory(cp))];
  if (name.size() == 1) {
    if (name == "L" || name == "M" || name == "N" || name == "P" || name == "S" || name == "Z" ||
        name == "C") {
      return full[0] == name[0];
    }
  } else if (name.size() == 2) {
    for (const char* n : kCategoryNames) {
      if (name == n) return name == full;
    }
    if (name == "LC" || name == "L&") {
      const Category c = GetCategory(cp);
      return c == Category::kLu || c == Category::kLl || c == Category::kLt;
    }
  }
  static constexpr struct { std::string_view alias, cat; } kAliases[] = {
      {"Letter", "L"}, {"Mark", "M"}, {"Number", "N"}, {"Punctuation", "P"}, {"Symbol", "S"},
      {"Separator", "Z"}, {"Other", "C"}, {"Uppercase_Letter", "Lu"}, {"Lowercase_Letter", "Ll"},
      {"Decimal_Number", "Nd"}, {"Nonspacing_Mark", "Mn"}, {"Control", "Cc"}, {"Format", "Cf"},
  };
  for (const auto& a : kAliases) {
    if (name == a.alias) return CategoryMatches(cp, a.cat, known);
  }
  if (name == "White_Space" || name == "Space") return IsWhiteSpace(cp);
  if (name == "Alphabetic" || name == "Alpha") return IsAlphabetic(cp);
  if (name == "Any") return true;
  *known = false;
  return false;
}

bool IsLetter(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kLu && c <= Category::kLo;
}
bool IsNumber(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kNd && c <= Category::kNo;
}
bool IsMark(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kMn && c <= Category::kMe;
}
bool IsPunctuation(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kPc && c <= Category::kPo;
}
bool IsSymbol(char32_t cp) {
  const Category c = GetCategory(cp);
  return c >= Category::kSm && c <= Category::kSo;
}
bool IsWhiteSpace(char32_t cp) { return (Props(cp) & kWhiteSpaceBit) != 0; }
bool IsAlphabetic(char32_t cp) { return (Props(cp) & kAlphabeticBit) != 0; }
bool IsDigit(char32_t cp) { return GetCategory(cp) == Category::kNd; }
bool IsWordChar(char32_t cp) {
  return IsAlphabetic(cp) || IsMark(cp) || GetCategory(cp) == Category::kNd ||
         GetCategory(cp) == Category::kPc || cp == 0x200C || cp == 0x200D;
}

char32_t SimpleCaseFold(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  return LookupMapping(kCaseFolds, kCaseFolds + std::size(kCaseFolds), cp);
}

char32_t SimpleLowercase(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  return LookupMapping(kLowercase, kLowercase + std::size(kLowercase), cp);
}

std::u32string DecodeUtf8(std::string_view text, std::vector<uint32_t>* byte_offsets) {
  std::u32string out;
  out.reserve(text.size());
  if (byte_offsets) {
    byte_offsets->clear();
    byte_offsets->reserve(text.size() + 1);
  }
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (byte_offsets) byte_offsets->push_back(static_cast<uint32_t>(i));
    const unsigned char b0 = s[i];
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int need;
    char32_t cp;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      cp = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      cp = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    } else {
      out.push_back(kReplacementChar);
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool ok = true;
    for (int k = 0; k < need; ++k, ++j) {
      const unsigned char lo_k = k == 0 ? lo : 0x80, hi_k = k == 0 ? hi : 0xBF;
      if (j >= n || s[j] < lo_k || s[j] > hi_k) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (s[j] & 0x3F);
    }
    out.push_back(ok ? cp : kReplacementChar);
    i = j;  // on failure: restart at the byte that broke the sequence
  }
  if (byte_offsets) byte_offsets->push_back(static_cast<uint32_t>(n));
  return out;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) AppendUtf8(cp, &out);
  return out;
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80) ++i;
  if (i == text.size()) return true;
  const std::u32string decoded = DecodeUtf8(text.substr(i));
  // Valid iff re-encoding gives the same bytes (a U+FFFD in the input re-encodes to itself).
  return EncodeUtf8(decoded) == text.substr(i);
}

std::string SanitizeUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  return EncodeUtf8(DecodeUtf8(text));
}

size_t CompleteUtf8Prefix(std::string_view bytes) {
  // Look back at most 3 bytes for the lead byte of a well-formed but unfinished sequence.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<unsigned char>(bytes[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for the lead
    size_t need = 0;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b >= 0xE0 && b <= 0xEF) need = 2;
    else if (b >= 0xF0 && b <= 0xF4) need = 3;
    if (need < back) return n;  // complete, or no lead byte at all: nothing to hold back
    if (back >= 2) {            // the second byte's range depends on the lead byte
      const auto b1 = static_cast<unsigned char>(bytes[n - back + 1]);
      unsigned char lo = 0x80, hi = 0xBF;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
      if (b1 < lo || b1 > hi) return n;  // already ill-formed: more bytes cannot fix it
    }
    return n - back;
  }
  return n;
}

std::string Normalize(std::string_view text, NormalizationForm form) {
  bool ascii_only = true;
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0xCC) {  // lead bytes of U+0300 and above
      ascii_only = false;
      break;
    }
  }
  const bool compat = form == NormalizationForm::kNfkc || form == NormalizationForm::kNfkd;
  const bool compose = form == NormalizationForm::kNfc || form == NormalizationForm::kNfkc;
  // Below U+0300 only compatibility mappings change anything (e.g. U+00A0, U+00BD).
  if (ascii_only && !compat && compose) return SanitizeUtf8(text);
  const std::u32string input = DecodeUtf8(text);
  std::u32string d;
  d.reserve(input.size() + 8);
  for (char32_t cp : input) DecomposeOne(cp, compat, &d);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (CombiningClassOf(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && CombiningClassOf(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j, [](char32_t a, char32_t b) {
      return CombiningClassOf(a) < CombiningClassOf(b);
    });
    i = j;
  }
  if (compose && !d.empty()) {
    std::u32string c;
    c.reserve(d.size());
    size_t starter = std::u32string::npos;  // index in c of the last starter
    int last_ccc = 0;                       // class of the last character kept in c
    for (char32_t cp : d) {
      const int ccc = CombiningClassOf(cp);
      if (starter != std::u32string::npos) {
        // Not blocked: adjacent to the starter, or every character between has a lower,
        // non-zero class.
        const bool adjacent = c.size() == starter + 1;
        if (adjacent || (last_ccc != 0 && last_ccc < ccc)) {
          const char32_t composite = Compose(c[starter], cp);
          if (composite != 0) {
            c[starter] = composite;
            continue;
          }
        }
      }
      if (ccc == 0) starter = c.size();
      c.push_back(cp);
      last_ccc = ccc;
    }
    return EncodeUtf8(c);
  }
  return EncodeUtf8(d);
}

}  // namespace tokenfab::unicode
