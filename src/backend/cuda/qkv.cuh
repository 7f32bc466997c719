// Launcher of the Q/K/V preparation kernel: splits the fused projection output, applies the
// optional per-head q/k RMSNorm and RoPE ("rotate half" pairs (i, i + D/2)), writes rotated q
// and scatters k/v into the paged cache at each token's slot.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

struct PrepareQkvParams {
  const __nv_bfloat16* qkv;   // [T, (Hq + 2*Hkv) * D]
  const float* q_norm;        // [D] or null
  const float* k_norm;        // [D] or null
  const float* inv_freq;      // [D / 2]
  const int32_t* positions;   // [T]
  const int32_t* slots;       // [T]
  __nv_bfloat16* q_out;       // [T, Hq * D]
  __nv_bfloat16* k_cache;     // [num_slots, Hkv, D]
  __nv_bfloat16* v_cache;     // [num_slots, Hkv, D]
  int num_tokens;
  int num_q_heads;
  int num_kv_heads;
  int head_dim;
  int64_t num_slots;
  float eps;
};
cudaError_t LaunchPrepareQkv(const PrepareQkvParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
