#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/unicode.h"

namespace tokenfab::byte_level {
namespace {

struct Tables {
  std::array<char32_t, 256> byte_to_char{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 512> char_to_byte{};  // every alphabet char is below U+0200
  Tables() {
    char_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      byte_to_char[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      char_to_byte[byte_to_char[b]] = static_cast<int16_t>(b);
      unicode::AppendUtf8(byte_to_char[b], &byte_to_utf8[b]);
    }
  }
};

const Tables& Get() {
  static const Tables tables;
  return tables;
}

}  // namespace

char32_t ByteToChar(uint8_t b) { return Get().byte_to_char[b]; }
std::string_view ByteToUtf8(uint8_t b) { return Get().byte_to_utf8[b]; }
int CharToByte(char32_t c) { return c < 512 ? Get().char_to_byte[c] : -1; }

std::string Encode(std::string_view text) {
  const Tables& t = Get();
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) out += t.byte_to_utf8[static_cast<uint8_t>(c)];
  return out;
}

}  // namespace tokenfab::byte_level
