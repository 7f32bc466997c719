#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/qkv.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;

// Block (token, group of kWarps heads); one warp per head (q heads, then k heads, then v
// heads), so a decode token's heads run in parallel. Lane j of a warp owns the RoPE pairs
// (j, j + D/2), (j + 32, j + 32 + D/2), ...: kPairs of them (D / 2 <= 32 kPairs).
//
// Only the projection comes from the kernel before (the QKV GEMM): the position and slot (from
// the host), the pairs' rotations and the norm weights are read and computed before waiting
// for it, so at batch 1 that work hides under the GEMM's tail. Past the wait every load of
// the head is issued before the first store.
template <int kPairs>
__global__ void PrepareQkvKernel(PrepareQkvParams p) {
  const int t = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int d = p.head_dim, half = d / 2;
  const int heads = p.num_q_heads + 2 * p.num_kv_heads;
  const int h = blockIdx.y * kWarps + warp;
  const bool is_q = h < p.num_q_heads, is_v = h >= p.num_q_heads + p.num_kv_heads;
  const float* norm = is_q ? p.q_norm : p.k_norm;
  const int32_t pos = p.positions[t];
  const int32_t slot = p.slots[t];
  const bool slot_ok = slot >= 0 && slot < p.num_slots;
  float sn[kPairs], cs[kPairs], w1[kPairs], w2[kPairs];
#pragma unroll
  for (int k = 0; k < kPairs; ++k) {
    const int j = lane + 32 * k;
    sn[k] = 0.0f, cs[k] = 1.0f, w1[k] = w2[k] = 1.0f;
    if (h < heads && !is_v && j < half) {
      sincosf(static_cast<float>(pos) * p.inv_freq[j], &sn[k], &cs[k]);
      if (norm != nullptr) w1[k] = norm[j], w2[k] = norm[j + half];
    }
  }
  WaitForPriorGrids();
  if (h >= heads || (!is_q && !slot_ok)) return;
  const __nv_bfloat16* src = p.qkv + (static_cast<int64_t>(t) * heads + h) * d;
  __nv_bfloat16 x1[kPairs], x2[kPairs];
#pragma unroll
  for (int k = 0; k < kPairs; ++k) {
    const int j = lane + 32 * k;
    x1[k] = j < half ? src[j] : __float2bfloat16(0.0f);
    x2[k] = j < half ? src[j + half] : __float2bfloat16(0.0f);
  }
  if (is_v) {  // v: plain copy into the cache
    const int g = h - p.num_q_heads - p.num_kv_heads;
    __nv_bfloat16* dst = p.v_cache + (slot * static_cast<int64_t>(p.num_kv_heads) + g) * d;
#pragma unroll
    for (int k = 0; k < kPairs; ++k) {
      const int j = lane + 32 * k;
      if (j < half) dst[j] = x1[k], dst[j + half] = x2[k];
    }
    return;
  }
  float inv_rms = 1.0f;
  if (norm != nullptr) {
    float sum_sq = 0.0f;
#pragma unroll
    for (int k = 0; k < kPairs; ++k) {
      const float a = ToFloat(x1[k]), b = ToFloat(x2[k]);
      sum_sq += a * a + b * b;
    }
    inv_rms = rsqrtf(WarpSum(sum_sq) / d + p.eps);
  }
  __nv_bfloat16* dst =
      is_q ? p.q_out + (static_cast<int64_t>(t) * p.num_q_heads + h) * d
           : p.k_cache + (slot * static_cast<int64_t>(p.num_kv_heads) + h - p.num_q_heads) * d;
#pragma unroll
  for (int k = 0; k < kPairs; ++k) {
    const int j = lane + 32 * k;
    if (j >= half) continue;
    float a = ToFloat(x1[k]), b = ToFloat(x2[k]);
    if (norm != nullptr) {
      // Qwen3 rounds the normalised head to the activation dtype before RoPE.
      a = RoundBf16(w1[k] * (a * inv_rms));
      b = RoundBf16(w2[k] * (b * inv_rms));
    }
    dst[j] = __float2bfloat16(a * cs[k] - b * sn[k]);
    dst[j + half] = __float2bfloat16(b * cs[k] + a * sn[k]);
  }
}

}  // namespace

cudaError_t LaunchPrepareQkv(const PrepareQkvParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  const int heads = p.num_q_heads + 2 * p.num_kv_heads;
  const dim3 grid(p.num_tokens, (heads + kWarps - 1) / kWarps);
  const int half = p.head_dim / 2;
  if (half <= 32)
    LaunchPdl(PrepareQkvKernel<1>, grid, kWarps * 32, 0, stream, p);
  else if (half <= 64)
    LaunchPdl(PrepareQkvKernel<2>, grid, kWarps * 32, 0, stream, p);
  else if (half <= 128)
    LaunchPdl(PrepareQkvKernel<4>, grid, kWarps * 32, 0, stream, p);
  else
    return cudaErrorInvalidValue;  // head_dim > 256
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
