// The GPT-2 byte-level alphabet: each of the 256 byte values is shown as one printable
// Unicode character (printable ASCII and Latin-1 stand for themselves; the rest map to
// U+0100 and up), so that byte-level BPE vocabularies are plain strings.
// Thread-safety: constant tables built on first use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tokenfab::byte_level {

// The character standing for byte `b`.
char32_t ByteToChar(uint8_t b);
// The UTF-8 encoding of ByteToChar(b) (one or two bytes).
std::string_view ByteToUtf8(uint8_t b);
// The byte that `c` stands for, or -1 if `c` is not in the alphabet.
int CharToByte(char32_t c);

// Maps every byte of `text` to its character: the ByteLevel pre-tokenizer's transform.
std::string Encode(std::string_view text);

}  // namespace tokenfab::byte_level
