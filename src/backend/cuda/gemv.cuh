// Launcher of the skinny matrix multiply used for decode steps: out[M, N] = x[M, K] @ w[N, K]^T
// (+ bias) for M <= 16, bf16 operands, f32 accumulation.
//
// Decode is bound by reading the weights once per step, so this kernel is built for bandwidth:
// each warp streams kRowsPerWarp weight rows with 16-byte loads, several in flight per lane,
// and multiplies every loaded weight by all M rows of x (read through L1). cuBLASLt reaches
// well under the memory roofline at these shapes.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

constexpr int kGemvMaxRows = 16;

struct GemvParams {
  const __nv_bfloat16* x;  // [m, k]
  const __nv_bfloat16* w;  // [n, k]
  const float* bias;       // [n] or null
  void* out;               // [m, n], bf16 or f32
  bool out_f32;
  int m;  // <= kGemvMaxRows
  int n;
  int k;  // multiple of 8
};

// True if the kernel handles these shapes (m <= 16, k % 8 == 0, 16-byte aligned operands).
bool GemvSupports(const GemvParams& p);

cudaError_t LaunchGemv(const GemvParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
