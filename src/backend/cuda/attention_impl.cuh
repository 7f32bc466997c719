// Device helpers shared by the attention kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

// The sequence owning flattened token row `token`: the last s with query_start[s] <= token.
__device__ __forceinline__ int SequenceOfToken(const int32_t* query_start, int num_seqs,
                                               int token) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (query_start[mid] <= token) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The keys [begin, end) that split `split` of `splits` reads for a query at position `pos`:
// the query's window (all earlier keys, or the last `sliding_window` of them) cut into equal
// chunks; trailing splits of short windows get an empty range.
struct KeyRange {
  int begin;
  int end;
};
__device__ __forceinline__ KeyRange SplitKeyRange(int pos, int sliding_window, int split,
                                                  int splits) {
  const int kv_begin = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
  const int chunk = (pos + 1 - kv_begin + splits - 1) / splits;
  const int begin = kv_begin + split * chunk;
  return {begin, min(pos + 1, begin + chunk)};
}

// kWidth floats at p (kWidth 1 or 4, aligned to it), through L2.
template <int kWidth>
__device__ __forceinline__ void LoadL2(const float* p, float (&v)[kWidth]) {
  if constexpr (kWidth == 4) {
    const float4 x = __ldcg(reinterpret_cast<const float4*>(p));
    v[0] = x.x;
    v[1] = x.y;
    v[2] = x.z;
    v[3] = x.w;
  } else {
    static_assert(kWidth == 1);
    v[0] = __ldcg(p);
  }
}

// One thread's share of merging the split partial softmaxes of query row `row` ([splits][d]
// accumulators at partial_acc + row * splits * d, [splits] (max, sum) pairs at partial_ml +
// 2 * row * splits): the kVecs runs of kWidth output columns at col0 + k * col_stride, each
// out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s. The splits are folded online, kChunk at
// a time, and all loads of a chunk are independent, so a chunk costs one round trip to L2: this
// is the tail of a decode step's attention, where every dependent round trip adds to the step.
// The partials come through L2 (__ldcg), as other blocks wrote them. An empty split has
// m = -inf.
template <int kVecs, int kWidth, int kChunk>
__device__ __forceinline__ void MergeSplitColumns(const float* partial_acc, const float* partial_ml,
                                                  int64_t row, int splits, int d, int col0,
                                                  int col_stride, float (&out)[kVecs][kWidth]) {
  const float2* ml = reinterpret_cast<const float2*>(partial_ml) + row * splits;
  const float* acc = partial_acc + row * splits * d + col0;
  float m = -INFINITY, l = 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
#pragma unroll
    for (int j = 0; j < kWidth; ++j) out[k][j] = 0.0f;
  }
  for (int s0 = 0; s0 < splits; s0 += kChunk) {
    float2 ms[kChunk];
    float as[kChunk][kVecs][kWidth];
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      const bool in = s0 + i < splits;
      ms[i] = in ? __ldcg(ml + s0 + i) : make_float2(-INFINITY, 0.0f);
#pragma unroll
      for (int k = 0; k < kVecs; ++k) {
        if (in) {
          LoadL2<kWidth>(acc + (s0 + i) * d + k * col_stride, as[i][k]);
        } else {
#pragma unroll
          for (int j = 0; j < kWidth; ++j) as[i][k][j] = 0.0f;
        }
      }
    }
    float mx = m;
#pragma unroll
    for (int i = 0; i < kChunk; ++i) mx = fmaxf(mx, ms[i].x);
    if (mx == -INFINITY) continue;       // every split so far is empty
    const float alpha = __expf(m - mx);  // 0 while m is -inf
    l *= alpha;
#pragma unroll
    for (int k = 0; k < kVecs; ++k) {
#pragma unroll
      for (int j = 0; j < kWidth; ++j) out[k][j] *= alpha;
    }
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      const float w = ms[i].x == -INFINITY ? 0.0f : __expf(ms[i].x - mx);
      l += w * ms[i].y;
#pragma unroll
      for (int k = 0; k < kVecs; ++k) {
#pragma unroll
        for (int j = 0; j < kWidth; ++j) out[k][j] += w * as[i][k][j];
      }
    }
    m = mx;
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
  for (int k = 0; k < kVecs; ++k) {
#pragma unroll
    for (int j = 0; j < kWidth; ++j) out[k][j] *= inv;
  }
}

// kWidth floats as bf16 into dst (kWidth 1 or 4, aligned to it).
template <int kWidth>
__device__ __forceinline__ void StoreBf16(__nv_bfloat16* dst, const float (&v)[kWidth]) {
  if constexpr (kWidth == 4) {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]);
    const __nv_bfloat162 hi = __floats2bfloat162_rn(v[2], v[3]);
    uint2 raw;
    memcpy(&raw.x, &lo, 4);
    memcpy(&raw.y, &hi, 4);
    *reinterpret_cast<uint2*>(dst) = raw;
  } else {
    static_assert(kWidth == 1);
    dst[0] = __float2bfloat16(v[0]);
  }
}

}  // namespace tokenfab::cuda
