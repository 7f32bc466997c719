#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/qkv.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;

// Block (token, group of kWarps heads); one warp per head (q heads, then k heads, then v
// heads), so a decode token's heads run in parallel. Lane j of a warp owns the RoPE pairs
// (j, j + D/2), (j + 32, j + 32 + D/2), ...
__global__ void PrepareQkvKernel(PrepareQkvParams p) {
  WaitForPriorGrids();
  const int t = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int d = p.head_dim, half = d / 2;
  const int heads = p.num_q_heads + 2 * p.num_kv_heads;
  const int32_t pos = p.positions[t];
  const int32_t slot = p.slots[t];
  const bool slot_ok = slot >= 0 && slot < p.num_slots;
  const __nv_bfloat16* row = p.qkv + static_cast<int64_t>(t) * heads * d;
  {
    const int h = blockIdx.y * kWarps + warp;
    if (h >= heads) return;
    const __nv_bfloat16* src = row + h * d;
    if (h >= p.num_q_heads + p.num_kv_heads) {  // v: plain copy into the cache
      if (!slot_ok) return;
      const int g = h - p.num_q_heads - p.num_kv_heads;
      __nv_bfloat16* dst = p.v_cache + (slot * static_cast<int64_t>(p.num_kv_heads) + g) * d;
      for (int i = lane; i < d; i += 32) dst[i] = src[i];
      return;
    }
    const bool is_q = h < p.num_q_heads;
    const float* norm = is_q ? p.q_norm : p.k_norm;
    float inv_rms = 1.0f;
    if (norm != nullptr) {
      float sum_sq = 0.0f;
      for (int i = lane; i < d; i += 32) {
        const float v = ToFloat(src[i]);
        sum_sq += v * v;
      }
      inv_rms = rsqrtf(WarpSum(sum_sq) / d + p.eps);
    }
    __nv_bfloat16* dst;
    if (is_q) {
      dst = p.q_out + (static_cast<int64_t>(t) * p.num_q_heads + h) * d;
    } else {
      if (!slot_ok) return;
      const int g = h - p.num_q_heads;
      dst = p.k_cache + (slot * static_cast<int64_t>(p.num_kv_heads) + g) * d;
    }
    for (int j = lane; j < half; j += 32) {
      float x1 = ToFloat(src[j]), x2 = ToFloat(src[j + half]);
      if (norm != nullptr) {
        // Qwen3 rounds the normalised head to the activation dtype before RoPE.
        x1 = ToFloat(__float2bfloat16(norm[j] * (x1 * inv_rms)));
        x2 = ToFloat(__float2bfloat16(norm[j + half] * (x2 * inv_rms)));
      }
      float s, c;
      sincosf(static_cast<float>(pos) * p.inv_freq[j], &s, &c);
      dst[j] = __float2bfloat16(x1 * c - x2 * s);
      dst[j + half] = __float2bfloat16(x2 * c + x1 * s);
    }
  }
}

}  // namespace

cudaError_t LaunchPrepareQkv(const PrepareQkvParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  const int heads = p.num_q_heads + 2 * p.num_kv_heads;
  const dim3 grid(p.num_tokens, (heads + kWarps - 1) / kWarps);
  LaunchPdl(PrepareQkvKernel, grid, kWarps * 32, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
