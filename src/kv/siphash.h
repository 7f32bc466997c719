// SipHash-2-4 with a 128-bit output (Aumasson and Bernstein's "SipHash-128"): a keyed
// pseudo-random function, fast on short inputs. Keyed with a per-deployment secret it makes
// block hashes that a client cannot steer into collisions with another tenant's blocks.
// Test vectors: the reference implementation's vectors.h (tests/kv/siphash_test.cc).
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tokenfab {

using SipKey = std::array<uint8_t, 16>;

struct Hash128 {
  uint64_t lo = 0;  // the first 8 output bytes, little-endian
  uint64_t hi = 0;  // the last 8 output bytes, little-endian

  friend bool operator==(const Hash128& a, const Hash128& b) { return a.lo == b.lo && a.hi == b.hi; }
  friend bool operator!=(const Hash128& a, const Hash128& b) { return !(a == b); }
  // The 16 output bytes in the reference implementation's order.
  std::array<uint8_t, 16> Bytes() const;
};

Hash128 SipHash128(const SipKey& key, const void* data, size_t size);

}  // namespace tokenfab
