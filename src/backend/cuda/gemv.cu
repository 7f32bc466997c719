#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/gemv.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kUnroll = 2;  // K steps of 256 elements whose loads are issued together

template <int kM, typename OutT>
__global__ void __launch_bounds__(kWarps * 32) GemvKernel(GemvParams p) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = (blockIdx.x * kWarps + warp) * kRowsPerWarp;
  if (row0 >= p.n) return;
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
  int v = lane;
  // Main loop: kUnroll * kRowsPerWarp independent 16-byte weight loads in flight per lane.
  for (; v + (kUnroll - 1) * 32 < vecs; v += kUnroll * 32) {
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
  for (; v < vecs; v += 32) {  // remainder
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
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = row0 + r;
#pragma unroll
    for (int i = 0; i < kM; ++i) {
      if (i < m) {
        const float sum = WarpSum(acc[r][i]);
        if (lane == 0 && row < p.n) {
          const float value = sum + (p.bias ? p.bias[row] : 0.0f);
          static_cast<OutT*>(p.out)[static_cast<int64_t>(i) * p.n + row] = FromFloat<OutT>(value);
        }
      }
    }
  }
}

template <int kM>
void LaunchFor(const GemvParams& p, cudaStream_t stream) {
  const int rows_per_block = kWarps * kRowsPerWarp;
  const int blocks = (p.n + rows_per_block - 1) / rows_per_block;
  if (p.out_f32) {
    GemvKernel<kM, float><<<blocks, kWarps * 32, 0, stream>>>(p);
  } else {
    GemvKernel<kM, __nv_bfloat16><<<blocks, kWarps * 32, 0, stream>>>(p);
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
