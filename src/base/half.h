// Conversions between float and the 16-bit float formats stored in checkpoints.
//
// bf16 is the top half of an IEEE float; float -> bf16 rounds to nearest even (NaN stays NaN),
// which is what torch does. f16 is IEEE binary16, converted exactly in both directions
// (float -> f16 rounds to nearest even). Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tokenfab {

inline float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float F16ToFloat(uint16_t h);
uint16_t FloatToF16(float f);

// Bulk conversions; `n` elements.
void Bf16ToFloat(const uint16_t* in, float* out, size_t n);
void F16ToFloat(const uint16_t* in, float* out, size_t n);

}  // namespace tokenfab
