// Launcher of the skinny matrix multiply used for decode steps: out[M, N] = x[M, K] @ w[N, K]^T
// (+ bias) for M <= 16, bf16 weights, f32 accumulation, with the neighbouring element-wise
// work fused in so a decode layer is a handful of launches:
//   - x may be read as silu(gate) * up from an MLP's fused gate/up output (worth it for one or
//     two rows; with more, every warp would recompute it for each row);
//   - the result may be stored (bf16 or f32) or added into an f32 residual stream.
// (Fusing the RMSNorm in too was measured slower: every block re-reading the rows for their rms
// cost more than the separate norm kernel.)
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
  kSiluMul,  // x = bf16(silu(g) * u), g/u the two halves of bf16 [m, 2k]; m <= 2
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
  const __nv_bfloat16* w;    // [n, k]
  const float* bias;         // [n] or null
  void* out;                 // [m, n]
  int m;                     // <= kGemvMaxRows
  int n;
  int k;                     // multiple of 8
};

// True if the kernel handles these shapes (m <= 16, or <= 2 for kSiluMul; k % 8 == 0; 16-byte
// aligned operands).
bool GemvSupports(const GemvParams& p);

cudaError_t LaunchGemv(const GemvParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
