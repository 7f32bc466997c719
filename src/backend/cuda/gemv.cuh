// Launcher of the skinny matrix multiply used for decode steps: out[M, N] = x[M, K] @ w[N, K]^T
// (+ bias) for M <= kGemvMaxRows, bf16 operands, f32 accumulation; the result is stored (bf16
// or f32) or added into an f32 residual stream, so a block's output projection needs no
// separate add.
// (Fusing the row-wise producers of x in — RMSNorm, SiLU*mul — was measured slower: x is
// shared by all N output rows, so every warp recomputed it; the separate kernels are cheaper.
// SiLU*mul in the gate/up projection's epilogue computes each product once instead: `gated`.
// Prefetching each warp's first weight bytes into L2 before the PDL wait was measured slower
// too: H200 batch-1 decode 214.7 against 221.7 tok/s.)
// Decode is bound by reading the weights once per step, so the kernel is built for bandwidth:
// each warp streams kRowsPerWarp weight rows with 16-byte loads, several in flight per lane, and
// when N alone gives too few warps the K dimension is split across the warps of a block.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

// For 1 and 2 rows the kernel streams the weights near the read bandwidth; with more rows its
// f32 FMAs and per-row activation loads make it compute-bound, and cuBLASLt is faster (H100,
// Llama-3.1-8B decode: 4 rows through this kernel 445 tok/s, 8 rows through cuBLASLt 1145).
constexpr int kGemvMaxRows = 2;

enum class GemvOutput {
  kStoreBf16,
  kStoreF32,
  kAddF32,  // out (f32) += result
};

struct GemvParams {
  GemvOutput output = GemvOutput::kStoreBf16;
  const __nv_bfloat16* x;    // [m, k]
  const __nv_bfloat16* w;    // [n, k]
  const float* bias;         // [n] or null
  void* out;                 // [m, n]
  int m;                     // <= kGemvMaxRows
  int n;
  int k;                     // multiple of 8
  // w has 2n rows (gate rows, then up rows) and each output is
  // silu(gate) * up, both rounded to bf16 first as a stored projection would be; out is bf16.
  bool gated = false;
};

// True if the kernel handles these shapes (m <= kGemvMaxRows, k % 8 == 0, 16-byte aligned
// operands; gated outputs are stored as bf16).
bool GemvSupports(const GemvParams& p);

cudaError_t LaunchGemv(const GemvParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
