// Launcher of the skinny matrix multiply used for decode steps: out[M, N] = x[M, K] @ w[N, K]^T
// (+ bias) for M <= 16, bf16 weights, f32 accumulation, with the neighbouring row-wise work
// fused in so a decode layer is a handful of launches:
//   - x may be read as RmsNorm(residual) (f32 residual, f32 norm weight; each block computes
//     the rows' rms itself) or as silu(gate) * up from an MLP's fused gate/up output;
//   - the result may be stored (bf16 or f32) or added into an f32 residual stream.
// Decode is bound by reading the weights once per step, so the kernel is built for bandwidth:
// each warp streams kRowsPerWarp weight rows with 16-byte loads, several in flight per lane, and
// when N alone gives too few warps the K dimension is split across the warps of a block.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

constexpr int kGemvMaxRows = 16;

enum class GemvInput {
  kBf16,     // x bf16 [m, k]
  kNormF32,  // x = bf16(residual * rsqrt(mean(residual^2) + eps) * norm_weight), residual f32
  kSiluMul,  // x = bf16(silu(g) * u), g/u the two halves of bf16 [m, 2k]
};

enum class GemvOutput {
  kStoreBf16,
  kStoreF32,
  kAddF32,  // out (f32) += result
};

struct GemvParams {
  GemvInput input = GemvInput::kBf16;
  GemvOutput output = GemvOutput::kStoreBf16;
  const void* x;             // see GemvInput
  const float* norm_weight;  // [k], kNormF32 only
  float eps = 1e-6f;         // kNormF32 only
  const __nv_bfloat16* w;    // [n, k]
  const float* bias;         // [n] or null
  void* out;                 // [m, n]
  int m;                     // <= kGemvMaxRows
  int n;
  int k;                     // multiple of 8
};

// True if the kernel handles these shapes (m <= 16, k % 8 == 0, 16-byte aligned operands).
bool GemvSupports(const GemvParams& p);

cudaError_t LaunchGemv(const GemvParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
