#include "backend/cpu/cpu_probe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_matmul.h"

namespace tokenfab {
namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<DeviceCeilings> CpuProbe::MeasureCeilings() {
  DeviceCeilings c;
  c.device_name = "cpu (" + std::to_string(pool_->num_threads()) + " threads)";
  c.matmul_dtype = "f32";
  const size_t n = (1ull << 30) / sizeof(float);
  std::vector<float> a(n, 1.0f), b(n / 2);
  // XOR of 64-bit words: a reduction the compiler vectorises, so memory is the limit.
  const auto* words = reinterpret_cast<const uint64_t*>(a.data());
  const int64_t num_words = static_cast<int64_t>(n / 2);
  std::atomic<uint64_t> sink{0};
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    pool_->ParallelFor(num_words, [&](int64_t begin, int64_t end) {
      uint64_t x = 0;
      for (int64_t i = begin; i < end; ++i) x ^= words[i];
      sink.fetch_xor(x);
    }, 1 << 20);
    best = std::min(best, Seconds(start));
  }
  c.read_gb_per_s = n * sizeof(float) / best / 1e9;
  best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), b.size() * sizeof(float));
    best = std::min(best, Seconds(start));
  }
  c.copy_gb_per_s = 2.0 * b.size() * sizeof(float) / best / 1e9;
  constexpr int64_t kDim = 1024;
  std::vector<float> x(kDim * kDim), w(kDim * kDim), out(kDim * kDim);
  for (size_t i = 0; i < x.size(); ++i) x[i] = w[i] = static_cast<float>(i % 7) * 0.1f;
  CpuGemm(x.data(), kDim, kDim, w.data(), DType::kF32, kDim, nullptr, out.data(), *pool_);
  best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    CpuGemm(x.data(), kDim, kDim, w.data(), DType::kF32, kDim, nullptr, out.data(), *pool_);
    best = std::min(best, Seconds(start));
  }
  c.matmul_tflops = 2.0 * kDim * kDim * kDim / best / 1e12;
  return c;
}

}  // namespace tokenfab
