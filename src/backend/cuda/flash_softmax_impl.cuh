// The online softmax and output store shared by the tensor-core prefill kernels (mma.sync and
// wgmma): both hold a warp's scores and outputs in the m16n8 accumulator layout, 16 query rows
// a tile, lane l holding rows l / 4 and l / 4 + 8 ("half" 0 and 1), columns 2 * (l % 4) + {0, 1}
// of every 8-column group.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/common_impl.cuh"

namespace tokenfab::cuda {

// 2^x on the SFU, subnormal results flushed to 0 (exp2f also rescales subnormal inputs, which
// costs instructions in the softmax's hot loop for nothing: p below 2^-126 adds nothing).
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The online softmax of one tile of kN keys for a warp's kMT m16 tiles, but for the output:
// s holds the raw scores Q.K of this thread's fragment and becomes p = 2^(s * scale_log2 - m) in
// place; m (the scaled running max, -inf while no key was visible) and l (this thread's part of
// the running sum) move to the new max, and alpha is the factor the output must be scaled by
// for it (RescaleOutput). The scale folds into the exponent's FFMA. kMask applies the causal,
// window and length mask first (pos: the rows' positions, -1 for rows past the chunk).
template <bool kMask, int kN, int kMT>
__device__ __forceinline__ void SoftmaxScores(float (&s)[kMT][kN / 8][4], float (&m)[kMT][2],
                                              float (&l)[kMT][2], float (&alpha)[kMT][2],
                                              const int (&pos)[kMT][2], int kv0, int kv_hi,
                                              int window, float scale_log2, int lane) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    if constexpr (kMask) {
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = kv0 + j * 8 + (lane & 3) * 2 + (e & 1), at = pos[mt][e >> 1];
          const bool ok = key < kv_hi && key <= at && (window == 0 || key > at - window);
          if (!ok) s[mt][j][e] = -INFINITY;
        }
      }
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < kN / 8; ++j)
        mx = fmaxf(mx, fmaxf(s[mt][j][2 * half], s[mt][j][2 * half + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
      const float next = fmaxf(m[mt][half], mx * scale_log2);
      // A row that has seen no key yet keeps -inf; subtracting 0 keeps its p (of -inf) at 0.
      const float sub = kMask && next == -INFINITY ? 0.0f : next;
      alpha[mt][half] = Exp2(m[mt][half] - sub);  // 0 the first time: o and l are 0
      m[mt][half] = next;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
        s[mt][j][2 * half] = Exp2(fmaf(s[mt][j][2 * half], scale_log2, -sub));
        s[mt][j][2 * half + 1] = Exp2(fmaf(s[mt][j][2 * half + 1], scale_log2, -sub));
        sum += s[mt][j][2 * half] + s[mt][j][2 * half + 1];
      }
      l[mt][half] = l[mt][half] * alpha[mt][half] + sum;
    }
  }
}

template <int D, int kMT>
__device__ __forceinline__ void RescaleOutput(float (&o)[kMT][D / 8][4],
                                              const float (&alpha)[kMT][2]) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[mt][j][0] *= alpha[mt][0];
      o[mt][j][1] *= alpha[mt][0];
      o[mt][j][2] *= alpha[mt][1];
      o[mt][j][3] *= alpha[mt][1];
    }
  }
}

// SoftmaxScores, then the output moved to the new max.
template <bool kMask, int kN, int D, int kMT>
__device__ __forceinline__ void OnlineSoftmax(float (&s)[kMT][kN / 8][4], float (&o)[kMT][D / 8][4],
                                              float (&m)[kMT][2], float (&l)[kMT][2],
                                              const int (&pos)[kMT][2], int kv0, int kv_hi,
                                              int window, float scale_log2, int lane) {
  float alpha[kMT][2];
  SoftmaxScores<kMask, kN, kMT>(s, m, l, alpha, pos, kv0, kv_hi, window, scale_log2, lane);
  RescaleOutput<D, kMT>(o, alpha);
}

// The sum of a row's l over the 4 lanes that hold it.
__device__ __forceinline__ float RowSum(float l) {
  l += __shfl_xor_sync(kFullMask, l, 1);
  return l + __shfl_xor_sync(kFullMask, l, 2);
}

// o / sum for the 16 rows of one m16 tile, as bf16 into p.out: row_a (and row_a + 8) of the
// block's tile, whose first row is token `tile_token`; rows at or past rows_here are skipped.
template <int D>
__device__ __forceinline__ void StoreOutputRows(const float (&o)[D / 8][4], float sum_a,
                                                float sum_b, int row_a, int rows_here,
                                                int tile_token, int h, int lane,
                                                const AttentionParams& p) {
  const int row_b = row_a + 8;
  const float inv_a = sum_a > 0.0f ? 1.0f / sum_a : 0.0f;
  const float inv_b = sum_b > 0.0f ? 1.0f / sum_b : 0.0f;
  __nv_bfloat16* out_a = p.out + (static_cast<int64_t>(tile_token + row_a) * p.num_q_heads + h) * D;
  __nv_bfloat16* out_b = out_a + static_cast<int64_t>(8) * p.num_q_heads * D;
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    const int col = j * 8 + (lane & 3) * 2;
    if (row_a < rows_here) {
      *reinterpret_cast<__nv_bfloat162*>(out_a + col) =
          __floats2bfloat162_rn(o[j][0] * inv_a, o[j][1] * inv_a);
    }
    if (row_b < rows_here) {
      *reinterpret_cast<__nv_bfloat162*>(out_b + col) =
          __floats2bfloat162_rn(o[j][2] * inv_b, o[j][3] * inv_b);
    }
  }
}

}  // namespace tokenfab::cuda
