#include "backend/cpu/cpu_matmul.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/check.h"
#include "base/half.h"

namespace tokenfab {
namespace {

constexpr int kMr = 6;      // rows of x per micro-kernel call
constexpr int kNr = 16;     // columns (weight rows) per packed strip
constexpr int kKc = 256;    // K block: a packed strip is kKc * kNr floats (16 KiB)
constexpr int kStrips = 4;  // strips per task: a task owns 64 output columns
// Up to this many rows of x, streaming each weight row once beats packing the weights.
constexpr int kGemvRows = 16;

// F16C from cpuid (leaf 1, ecx bit 29): clang before 15 has no "f16c" for
// __builtin_cpu_supports and refuses to compile it.
bool HaveF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

bool HaveAvx2() {
  static const bool have =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && HaveF16c();
  return have;
}

// ---- widening ---------------------------------------------------------------------------------

void WidenPortable(const void* src, DType dtype, int64_t count, float* dst) {
  switch (dtype) {
    case DType::kF32: std::memcpy(dst, src, count * sizeof(float)); return;
    case DType::kBF16: Bf16ToFloat(static_cast<const uint16_t*>(src), dst, count); return;
    case DType::kF16: F16ToFloat(static_cast<const uint16_t*>(src), dst, count); return;
    case DType::kI32:
    case DType::kU8: break;
  }
  CHECK(false) << "cannot widen " << DTypeName(dtype);
}

__attribute__((target("avx2,fma,f16c"))) void WidenAvx2(const void* src, DType dtype,
                                                         int64_t count, float* dst) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  if (dtype == DType::kBF16) {
    for (; i + 8 <= count; i += 8) {
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
      const __m256i wide = _mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16);
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(wide));
    }
  } else if (dtype == DType::kF16) {
    for (; i + 8 <= count; i += 8) {
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(raw));
    }
  } else {
    WidenPortable(src, dtype, count, dst);
    return;
  }
  if (i < count) WidenPortable(h + i, dtype, count - i, dst + i);
}

const void* Offset(const void* base, DType dtype, int64_t elements) {
  return static_cast<const char*>(base) + elements * static_cast<int64_t>(DTypeSize(dtype));
}

// ---- micro-kernels: c[mr, 16] (+)= a[mr, kc] * b_packed[kc, 16] --------------------------------

template <int MR>
__attribute__((target("avx2,fma"))) void KernelAvx2(const float* a, int64_t lda, const float* b,
                                                    int kc, float* c, int64_t ldc, int nr,
                                                    bool accumulate) {
  __m256 acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kNr);
    const __m256 b1 = _mm256_loadu_ps(b + k * kNr + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* row = c + r * ldc;
    if (nr == kNr) {
      if (accumulate) {
        acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(row));
        acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, acc0[r]);
      _mm256_storeu_ps(row + 8, acc1[r]);
    } else {
      alignas(32) float tmp[kNr];
      _mm256_store_ps(tmp, acc0[r]);
      _mm256_store_ps(tmp + 8, acc1[r]);
      for (int j = 0; j < nr; ++j) row[j] = accumulate ? row[j] + tmp[j] : tmp[j];
    }
  }
}

template <int MR>
void KernelPortable(const float* a, int64_t lda, const float* b, int kc, float* c, int64_t ldc,
                    int nr, bool accumulate) {
  float acc[MR][kNr] = {};
  for (int k = 0; k < kc; ++k) {
    for (int r = 0; r < MR; ++r) {
      const float av = a[r * lda + k];
      for (int j = 0; j < kNr; ++j) acc[r][j] += av * b[k * kNr + j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < nr; ++j) c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
  }
}

using KernelFn = void (*)(const float*, int64_t, const float*, int, float*, int64_t, int, bool);

KernelFn PickKernel(int mr) {
  static const KernelFn avx2[kMr] = {KernelAvx2<1>, KernelAvx2<2>, KernelAvx2<3>,
                                     KernelAvx2<4>, KernelAvx2<5>, KernelAvx2<6>};
  static const KernelFn portable[kMr] = {KernelPortable<1>, KernelPortable<2>, KernelPortable<3>,
                                         KernelPortable<4>, KernelPortable<5>, KernelPortable<6>};
  return HaveAvx2() ? avx2[mr - 1] : portable[mr - 1];
}

// ---- dot products for few rows ----------------------------------------------------------------

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(s0, s1));
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

float DotPortable(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void GemvRows(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
              const float* bias, float* out, ThreadPool& pool) {
  const bool avx2 = HaveAvx2();
  pool.ParallelFor(
      n,
      [&](int64_t begin, int64_t end) {
        thread_local std::vector<float> row;
        row.resize(k);
        for (int64_t j = begin; j < end; ++j) {
          WidenToF32(Offset(w, w_dtype, j * k), w_dtype, k, row.data());
          for (int64_t r = 0; r < m; ++r) {
            const float dot = avx2 ? DotAvx2(x + r * k, row.data(), k)
                                   : DotPortable(x + r * k, row.data(), k);
            out[r * n + j] = dot + (bias ? bias[j] : 0.0f);
          }
        }
      },
      /*min_chunk=*/16);
}

// Packs columns [n0, n0 + cols) x k range [k0, k0 + kc) of w into strips of kNr, zero-padded.
void PackPanel(const void* w, DType w_dtype, int64_t k, int64_t n0, int cols, int64_t k0, int kc,
               float* packed, float* scratch_row) {
  const int strips = (cols + kNr - 1) / kNr;
  for (int s = 0; s < strips; ++s) {
    float* strip = packed + static_cast<int64_t>(s) * kc * kNr;
    for (int j = 0; j < kNr; ++j) {
      const int col = s * kNr + j;
      if (col < cols) {
        WidenToF32(Offset(w, w_dtype, (n0 + col) * k + k0), w_dtype, kc, scratch_row);
        for (int kk = 0; kk < kc; ++kk) strip[kk * kNr + j] = scratch_row[kk];
      } else {
        for (int kk = 0; kk < kc; ++kk) strip[kk * kNr + j] = 0.0f;
      }
    }
  }
}

}  // namespace

void WidenToF32(const void* src, DType dtype, int64_t count, float* dst) {
  if (HaveAvx2()) {
    WidenAvx2(src, dtype, count, dst);
  } else {
    WidenPortable(src, dtype, count, dst);
  }
}

void CpuGemm(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
             const float* bias, float* out, ThreadPool& pool) {
  CHECK(m >= 0 && k > 0 && n >= 0);
  if (m == 0 || n == 0) return;
  if (m <= kGemvRows) {
    GemvRows(x, m, k, w, w_dtype, n, bias, out, pool);
    return;
  }
  constexpr int kTaskCols = kStrips * kNr;
  const int64_t tasks = (n + kTaskCols - 1) / kTaskCols;
  pool.ParallelFor(tasks, [&](int64_t task_begin, int64_t task_end) {
    thread_local std::vector<float> packed;
    thread_local std::vector<float> scratch_row;
    packed.resize(static_cast<size_t>(kStrips) * kKc * kNr);
    scratch_row.resize(kKc);
    for (int64_t task = task_begin; task < task_end; ++task) {
      const int64_t n0 = task * kTaskCols;
      const int cols = static_cast<int>(std::min<int64_t>(kTaskCols, n - n0));
      const int strips = (cols + kNr - 1) / kNr;
      for (int64_t k0 = 0; k0 < k; k0 += kKc) {
        const int kc = static_cast<int>(std::min<int64_t>(kKc, k - k0));
        PackPanel(w, w_dtype, k, n0, cols, k0, kc, packed.data(), scratch_row.data());
        for (int64_t m0 = 0; m0 < m; m0 += kMr) {
          const int mr = static_cast<int>(std::min<int64_t>(kMr, m - m0));
          const KernelFn kernel = PickKernel(mr);
          for (int s = 0; s < strips; ++s) {
            const int nr = std::min(kNr, cols - s * kNr);
            kernel(x + m0 * k + k0, k, packed.data() + static_cast<int64_t>(s) * kc * kNr, kc,
                   out + m0 * n + n0 + s * kNr, n, nr, /*accumulate=*/k0 > 0);
          }
        }
      }
      if (bias != nullptr) {
        for (int64_t r = 0; r < m; ++r) {
          for (int j = 0; j < cols; ++j) out[r * n + n0 + j] += bias[n0 + j];
        }
      }
    }
  });
}

}  // namespace tokenfab
