// Blocked, multithreaded f32 GEMM with weights widened from bf16/f16/f32 on the fly.
//
// out[M, N] = x[M, K] @ w[N, K]^T (+ bias[N]). Row-major, K contiguous in both operands (the
// layout of a torch Linear weight). Weight panels are packed and widened once per K block and
// reused for every row of x; an AVX2/FMA micro-kernel (chosen at run time) does the math, with a
// portable fallback. Up to 16 rows (decode batches) take a dot-product path that streams each
// weight row once instead, since packing costs as much as the math there.
#pragma once

#include <cstdint>

#include "backend/dtype.h"
#include "base/thread_pool.h"

namespace tokenfab {

void CpuGemm(const float* x, int64_t m, int64_t k, const void* w, DType w_dtype, int64_t n,
             const float* bias, float* out, ThreadPool& pool);

// dst[i] = float(src[i]) for i < count; src is `dtype` (bf16, f16 or f32).
void WidenToF32(const void* src, DType dtype, int64_t count, float* dst);

}  // namespace tokenfab
