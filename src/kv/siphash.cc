#include "kv/siphash.h"

#include <cstring>

namespace tokenfab {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct State {
  uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1; v1 = Rotl(v1, 13); v1 ^= v0; v0 = Rotl(v0, 32);
    v2 += v3; v3 = Rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = Rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = Rotl(v1, 17); v1 ^= v2; v2 = Rotl(v2, 32);
  }
};

}  // namespace

std::array<uint8_t, 16> Hash128::Bytes() const {
  std::array<uint8_t, 16> out;
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<uint8_t>(lo >> (8 * i));
    out[8 + i] = static_cast<uint8_t>(hi >> (8 * i));
  }
  return out;
}

Hash128 SipHash128(const SipKey& key, const void* data, size_t size) {
  const uint8_t* in = static_cast<const uint8_t*>(data);
  const uint64_t k0 = Load64(key.data()), k1 = Load64(key.data() + 8);
  State s{0x736f6d6570736575ull ^ k0, 0x646f72616e646f6dull ^ k1, 0x6c7967656e657261ull ^ k0,
          0x7465646279746573ull ^ k1};
  s.v1 ^= 0xee;  // the 128-bit variant
  const size_t full = size - size % 8;
  for (size_t i = 0; i < full; i += 8) {
    const uint64_t m = Load64(in + i);
    s.v3 ^= m;
    s.Round();
    s.Round();
    s.v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(size) << 56;
  for (size_t i = 0; i < size % 8; ++i) b |= static_cast<uint64_t>(in[full + i]) << (8 * i);
  s.v3 ^= b;
  s.Round();
  s.Round();
  s.v0 ^= b;
  s.v2 ^= 0xee;
  for (int i = 0; i < 4; ++i) s.Round();
  Hash128 h;
  h.lo = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  s.v1 ^= 0xdd;
  for (int i = 0; i < 4; ++i) s.Round();
  h.hi = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  return h;
}

}  // namespace tokenfab
