#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/gemv.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kUnroll = 2;  // K steps of 256 elements whose loads are issued together

// Block = kWarps warps = kWarps / kSplit row groups of kRowsPerWarp rows; the kSplit warps of a
// group each stream one kSplit-th of K and their partial sums meet in shared memory. Splitting
// K keeps enough loads in flight when N is small (o_proj) or K long (down_proj).
template <int kM, typename OutT, int kSplit>
__global__ void __launch_bounds__(kWarps * 32) GemvKernel(GemvParams p) {
  constexpr int kGroups = kWarps / kSplit;
  __shared__ float partial[kWarps][kRowsPerWarp][kM];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = warp / kSplit, part = warp % kSplit;
  const int row0 = (blockIdx.x * kGroups + group) * kRowsPerWarp;
  const int m = p.m;
  float acc[kRowsPerWarp][kM];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int i = 0; i < kM; ++i) acc[r][i] = 0.0f;
  }
  const Bf16x8* w[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = min(row0 + r, p.n - 1);  // tail rows recompute the last row; not stored
    w[r] = reinterpret_cast<const Bf16x8*>(p.w + static_cast<int64_t>(row) * p.k);
  }
  const Bf16x8* x = reinterpret_cast<const Bf16x8*>(p.x);
  const int vecs = p.k / 8;  // 16-byte vectors per row
  const int x_stride = p.k / 8;
  const int v_begin = static_cast<int>(static_cast<int64_t>(vecs) * part / kSplit);
  const int v_end = static_cast<int>(static_cast<int64_t>(vecs) * (part + 1) / kSplit);
  int v = v_begin + lane;
  if (row0 < p.n) {
    // kUnroll * kRowsPerWarp independent 16-byte weight loads in flight per lane.
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
            Unpack(x[i * x_stride + v + u * 32], xf);
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
          Unpack(x[i * x_stride + v], xf);
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
      if (kSplit > 1 && lane == 0) partial[warp][r][i] = sum;
      acc[r][i] = sum;
    }
  }
  if constexpr (kSplit > 1) {
    __syncthreads();
    if (part != 0) return;
  }
  if (row0 >= p.n) return;
  // Lanes of the group's first warp write one (row, m) output each.
  for (int idx = lane; idx < kRowsPerWarp * kM; idx += 32) {
    const int r = idx / kM, i = idx % kM;
    const int row = row0 + r;
    if (i >= m || row >= p.n) continue;
    float value = 0.0f;
    if constexpr (kSplit > 1) {
#pragma unroll
      for (int s = 0; s < kSplit; ++s) value += partial[group * kSplit + s][r][i];
    } else {
#pragma unroll
      for (int rr = 0; rr < kRowsPerWarp; ++rr) {
#pragma unroll
        for (int ii = 0; ii < kM; ++ii) {
          if (rr == r && ii == i) value = acc[rr][ii];
        }
      }
    }
    if (p.bias) value += p.bias[row];
    static_cast<OutT*>(p.out)[static_cast<int64_t>(i) * p.n + row] = FromFloat<OutT>(value);
  }
}

template <int kM, int kSplit>
void LaunchSplit(const GemvParams& p, cudaStream_t stream) {
  const int rows_per_block = kWarps / kSplit * kRowsPerWarp;
  const int blocks = (p.n + rows_per_block - 1) / rows_per_block;
  if (p.out_f32) {
    GemvKernel<kM, float, kSplit><<<blocks, kWarps * 32, 0, stream>>>(p);
  } else {
    GemvKernel<kM, __nv_bfloat16, kSplit><<<blocks, kWarps * 32, 0, stream>>>(p);
  }
}

// Splits K across the warps of a block when N alone gives too few warps to keep the memory
// system busy (about 32 per multiprocessor), as long as each split still has >= 64 vectors.
template <int kM>
void LaunchFor(const GemvParams& p, cudaStream_t stream) {
  const int64_t warps = (static_cast<int64_t>(p.n) + kRowsPerWarp - 1) / kRowsPerWarp;
  const int vecs = p.k / 8;
  if (warps < 2048 && vecs >= 4 * 64) {
    LaunchSplit<kM, 4>(p, stream);
  } else if (warps < 4096 && vecs >= 2 * 64) {
    LaunchSplit<kM, 2>(p, stream);
  } else {
    LaunchSplit<kM, 1>(p, stream);
  }
}

}  // namespace

bool GemvSupports(const GemvParams& p) {
  return p.m >= 1 && p.m <= kGemvMaxRows && p.k % 8 == 0 && p.k > 0 && Aligned16(p.x) &&
         Aligned16(p.w);
}

cudaError_t LaunchGemv(const GemvParams& p, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  if (!GemvSupports(p)) return cudaErrorInvalidValue;
  if (p.m == 1) LaunchFor<1>(p, stream);
  else if (p.m == 2) LaunchFor<2>(p, stream);
  else if (p.m <= 4) LaunchFor<4>(p, stream);
  else if (p.m <= 8) LaunchFor<8>(p, stream);
  else LaunchFor<16>(p, stream);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
