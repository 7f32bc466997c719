#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/gemv.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kUnroll = 2;     // K steps of 256 elements whose loads are issued together
constexpr int kMaxSplit = 4;

// Block = kWarps warps = kWarps / split row groups of kRowsPerWarp weight rows; the `split`
// warps of a group each stream one split-th of K and their partial sums meet in shared memory.
// A group produces kOutPerWarp outputs: one per weight row, or (kGated) one per gate/up pair,
// the group's first half of rows being gate rows and the second half the matching up rows.
template <int kM, GemvOutput kOut, bool kGated>
__global__ void __launch_bounds__(kWarps * 32) GemvKernel(GemvParams p, int split) {
  constexpr int kOutPerWarp = kGated ? kRowsPerWarp / 2 : kRowsPerWarp;
  __shared__ float partial[kWarps][kRowsPerWarp][kM];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int m = p.m;
  const int groups = kWarps / split;
  const int group = warp / split, part = warp % split;
  const int out0 = (blockIdx.x * groups + group) * kOutPerWarp;
  // Weight row r of the group. Tail outputs recompute the last output's rows (not stored).
  auto row_of = [&](int r) {
    const int out = min(out0 + r % kOutPerWarp, p.n - 1);
    const int row = kGated && r >= kOutPerWarp ? p.n + out : out;
    return reinterpret_cast<const Bf16x8*>(p.w + static_cast<int64_t>(row) * p.k);
  };
  const int vecs = p.k / 8;
  const int v_begin = static_cast<int>(static_cast<int64_t>(vecs) * part / split);
  const int v_end = static_cast<int>(static_cast<int64_t>(vecs) * (part + 1) / split);
  const bool active = out0 < p.n && group < groups;
  const Bf16x8* w[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) w[r] = row_of(r);
  WaitForPriorGrids();
  float acc[kRowsPerWarp][kM];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int i = 0; i < kM; ++i) acc[r][i] = 0.0f;
  }
  const Bf16x8* x = reinterpret_cast<const Bf16x8*>(p.x);
  if (active) {
    int v = v_begin + lane;
    for (; v + (kUnroll - 1) * 32 < v_end; v += kUnroll * 32) {
      Bf16x8 wv[kUnroll][kRowsPerWarp];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) wv[u][r] = LoadReadOnly(&w[r][v + u * 32]);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float wf[kRowsPerWarp][8];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) Unpack(wv[u][r], wf[r]);
#pragma unroll
        for (int i = 0; i < kM; ++i) {
          if (i < m) {
            float xf[8];
            Unpack(x[static_cast<int64_t>(i) * vecs + v + u * 32], xf);
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
              for (int j = 0; j < 8; ++j) acc[r][i] += wf[r][j] * xf[j];
            }
          }
        }
      }
    }
    for (; v < v_end; v += 32) {  // remainder
      float wf[kRowsPerWarp][8];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) Unpack(LoadReadOnly(&w[r][v]), wf[r]);
#pragma unroll
      for (int i = 0; i < kM; ++i) {
        if (i < m) {
          float xf[8];
          Unpack(x[static_cast<int64_t>(i) * vecs + v], xf);
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[r][i] += wf[r][j] * xf[j];
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int i = 0; i < kM; ++i) {
      const float sum = WarpSum(acc[r][i]);
      if (lane == 0) partial[warp][r][i] = sum;
    }
  }
  __syncthreads();
  if (part != 0 || !active) return;
  // Lanes of the group's first warp finish one (output, m) pair each.
  for (int idx = lane; idx < kOutPerWarp * kM; idx += 32) {
    const int r = idx / kM, i = idx % kM;
    const int row = out0 + r;
    if (i >= m || row >= p.n) continue;
    float value = p.bias ? p.bias[row] : 0.0f;
    for (int s = 0; s < split; ++s) value += partial[group * split + s][r][i];
    const int64_t o = static_cast<int64_t>(i) * p.n + row;
    if constexpr (kGated) {
      float up = p.bias ? p.bias[p.n + row] : 0.0f;
      for (int s = 0; s < split; ++s) up += partial[group * split + s][r + kOutPerWarp][i];
      // As the unfused path: the projection stored as bf16, then SiluMulKernel's formula.
      const float g = RoundBf16(value), u = RoundBf16(up);
      static_cast<__nv_bfloat16*>(p.out)[o] = __float2bfloat16(SiluMul(g, u));
    } else if constexpr (kOut == GemvOutput::kStoreBf16) {
      static_cast<__nv_bfloat16*>(p.out)[o] = __float2bfloat16(value);
    } else if constexpr (kOut == GemvOutput::kStoreF32) {
      static_cast<float*>(p.out)[o] = value;
    } else {
      static_cast<float*>(p.out)[o] += value;  // one writer per element: no atomics
    }
  }
}

template <int kM, GemvOutput kOut, bool kGated>
void LaunchTyped(const GemvParams& p, cudaStream_t stream) {
  constexpr int kOutPerWarp = kGated ? kRowsPerWarp / 2 : kRowsPerWarp;
  const int64_t weight_rows = kGated ? 2 * static_cast<int64_t>(p.n) : p.n;
  // Split K when N alone gives too few warps to keep the memory system busy (about 16 per
  // multiprocessor), as long as each split keeps >= 64 vectors per lane group.
  const int64_t warps = (weight_rows + kRowsPerWarp - 1) / kRowsPerWarp;
  const int vecs = p.k / 8;
  int split = 1;
  if (warps < 2048 && vecs >= kMaxSplit * 64) {
    split = kMaxSplit;
  } else if (warps < 4096 && vecs >= 2 * 64) {
    split = 2;
  }
  const int outs_per_block = kWarps / split * kOutPerWarp;
  const int blocks = (p.n + outs_per_block - 1) / outs_per_block;
  LaunchPdl(GemvKernel<kM, kOut, kGated>, blocks, kWarps * 32, 0, stream, p, split);
}

template <GemvOutput kOut, bool kGated>
void LaunchForRows(const GemvParams& p, cudaStream_t stream) {
  static_assert(kGemvMaxRows == 2);
  if (p.m == 1) LaunchTyped<1, kOut, kGated>(p, stream);
  else LaunchTyped<2, kOut, kGated>(p, stream);
}

}  // namespace

bool GemvSupports(const GemvParams& p) {
  if (p.m < 1 || p.m > kGemvMaxRows || p.k <= 0 || p.k % 8 != 0) return false;
  if (p.gated && p.output != GemvOutput::kStoreBf16) return false;
  return Aligned16(p.x) && Aligned16(p.w);
}

cudaError_t LaunchGemv(const GemvParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  if (!GemvSupports(p)) return cudaErrorInvalidValue;
  if (p.gated) {
    LaunchForRows<GemvOutput::kStoreBf16, true>(p, stream);
    return cudaGetLastError();
  }
  switch (p.output) {
    case GemvOutput::kStoreBf16: LaunchForRows<GemvOutput::kStoreBf16, false>(p, stream); break;
    case GemvOutput::kStoreF32: LaunchForRows<GemvOutput::kStoreF32, false>(p, stream); break;
    case GemvOutput::kAddF32: LaunchForRows<GemvOutput::kAddF32, false>(p, stream); break;
  }
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
