// Counter-based random numbers: value = f(seed, stream, counter), with no state to carry.
//
// The same (seed, stream, counter) gives the same number on every thread, machine and backend,
// which is what makes seeded sampling reproducible and lets dummy weights be generated in
// parallel. Quality: SplitMix64 finalisers chained over the inputs (passes BigCrush as a
// counter hash); not cryptographic.
#pragma once

#include <cstdint>

// The same functions compile for CUDA device code, so the GPU draws the same numbers.
#if defined(__CUDACC__)
#define TF_HOST_DEVICE __host__ __device__
#else
#define TF_HOST_DEVICE
#endif

namespace tokenfab {

TF_HOST_DEVICE inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

TF_HOST_DEVICE inline uint64_t HashCounter(uint64_t seed, uint64_t stream, uint64_t counter) {
  return SplitMix64(SplitMix64(SplitMix64(seed) ^ stream) ^ counter);
}

// Uniform in [0, 1) with 53 random bits.
TF_HOST_DEVICE inline double UniformDouble(uint64_t seed, uint64_t stream, uint64_t counter) {
  return static_cast<double>(HashCounter(seed, stream, counter) >> 11) * 0x1.0p-53;
}

// Uniform in [-1, 1) as float with 24 random bits.
TF_HOST_DEVICE inline float UniformSymmetricFloat(uint64_t seed, uint64_t stream, uint64_t counter) {
  const uint32_t bits = static_cast<uint32_t>(HashCounter(seed, stream, counter) >> 40);
  return static_cast<float>(bits) * 0x1.0p-23f - 1.0f;
}

}  // namespace tokenfab
