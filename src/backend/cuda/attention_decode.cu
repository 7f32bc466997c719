#include <cfloat>

#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/common_impl.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;

__device__ int SequenceOfToken(const int32_t* query_start, int num_seqs, int token) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (query_start[mid] <= token) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// D: head_dim; L = D / 8 lanes per key; K = 32 / L keys per warp step.
template <int D, int G>
__global__ void __launch_bounds__(kWarps * 32) AttentionDecodeKernel(AttentionParams p) {
  constexpr int L = D / 8;
  constexpr int K = 32 / L;
  constexpr int kGroups = kWarps * K;  // lane groups per block
  extern __shared__ float smem[];      // [kGroups][G][D] acc, then [kGroups][G] m, l

  const int t = blockIdx.x, g = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int sub = lane / L;        // key slot within the warp step
  const int part = lane % L;       // which 8 dims
  const int group_id = warp * K + sub;
  const int seq = SequenceOfToken(p.query_start, p.num_seqs, t);
  const int pos = p.positions[t];
  const int kv_begin = p.sliding_window > 0 ? max(0, pos - p.sliding_window + 1) : 0;
  const int kv_len = pos + 1 - kv_begin;
  const int chunk = (kv_len + p.splits - 1) / p.splits;
  const int my_begin = kv_begin + split * chunk;
  const int my_end = min(pos + 1, my_begin + chunk);
  const int32_t* table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
  const int64_t head_stride = static_cast<int64_t>(p.num_kv_heads) * D;

  float q[G][8];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    const __nv_bfloat16* src =
        p.q + (static_cast<int64_t>(t) * p.num_q_heads + g * G + h) * D + part * 8;
    Unpack(*reinterpret_cast<const Bf16x8*>(src), q[h]);
#pragma unroll
    for (int i = 0; i < 8; ++i) q[h][i] *= p.scale;
  }
  float m[G], l[G], acc[G][8];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    m[h] = -FLT_MAX;
    l[h] = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[h][i] = 0.0f;
  }

  auto row_of = [&](int kpos, const __nv_bfloat16* cache) -> const Bf16x8* {
    const int32_t block = table[kpos / p.block_size];
    if (block < 0 || block >= p.num_blocks) return nullptr;
    return reinterpret_cast<const Bf16x8*>(
        cache + (static_cast<int64_t>(block) * p.block_size + kpos % p.block_size) * head_stride +
        static_cast<int64_t>(g) * D + part * 8);
  };

  // Each round a warp takes 2 * K keys (K lane groups, two keys each). The loop bound is the
  // warp's, not the lane group's, so all lanes stay converged for the shuffles.
  for (int base = my_begin + warp * K; base < my_end; base += 2 * kGroups) {
    const int k0 = base + sub, k1 = base + kGroups + sub;
    const Bf16x8* kr0 = k0 < my_end ? row_of(k0, p.k_cache) : nullptr;
    const Bf16x8* vr0 = k0 < my_end ? row_of(k0, p.v_cache) : nullptr;
    const Bf16x8* kr1 = k1 < my_end ? row_of(k1, p.k_cache) : nullptr;
    const Bf16x8* vr1 = k1 < my_end ? row_of(k1, p.v_cache) : nullptr;
    Bf16x8 kv[2] = {}, vv[2] = {};
    if (kr0) { kv[0] = LoadReadOnly(kr0); vv[0] = LoadReadOnly(vr0); }
    if (kr1) { kv[1] = LoadReadOnly(kr1); vv[1] = LoadReadOnly(vr1); }
    const bool present[2] = {kr0 != nullptr, kr1 != nullptr};
#pragma unroll
    for (int step = 0; step < 2; ++step) {
      float kf[8], vf[8];
      Unpack(kv[step], kf);
      Unpack(vv[step], vf);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) s += q[h][i] * kf[i];
#pragma unroll
        for (int off = L / 2; off > 0; off >>= 1) s += __shfl_xor_sync(kFullMask, s, off);
        if (present[step]) {  // keys past the window or in unassigned blocks take no part
          const float m_new = fmaxf(m[h], s);
          const float scale = __expf(m[h] - m_new);
          const float e = __expf(s - m_new);
          l[h] = l[h] * scale + e;
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[h][i] = acc[h][i] * scale + e * vf[i];
          m[h] = m_new;
        }
      }
    }
  }

  // Merge the lane groups: every group publishes (m, l, acc); the first kGroups * ... threads
  // combine per (head, dim).
  float* acc_s = smem;
  float* m_s = acc_s + kGroups * G * D;
  float* l_s = m_s + kGroups * G;
#pragma unroll
  for (int h = 0; h < G; ++h) {
#pragma unroll
    for (int i = 0; i < 8; ++i) acc_s[(group_id * G + h) * D + part * 8 + i] = acc[h][i];
    if (part == 0) {
      m_s[group_id * G + h] = m[h];
      l_s[group_id * G + h] = l[h];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += kWarps * 32) {
    const int h = idx / D, d = idx % D;
    float mx = -FLT_MAX;
    for (int gr = 0; gr < kGroups; ++gr) mx = fmaxf(mx, m_s[gr * G + h]);
    float lsum = 0.0f, osum = 0.0f;
    for (int gr = 0; gr < kGroups; ++gr) {
      const float w = l_s[gr * G + h] > 0.0f ? __expf(m_s[gr * G + h] - mx) : 0.0f;
      lsum += w * l_s[gr * G + h];
      osum += w * acc_s[(gr * G + h) * D + d];
    }
    const int64_t row = static_cast<int64_t>(t) * p.num_q_heads + g * G + h;
    if (p.splits == 1) {
      p.out[row * D + d] = __float2bfloat16(lsum > 0.0f ? osum / lsum : 0.0f);
    } else {
      p.partial_acc[(row * p.splits + split) * D + d] = osum;
      if (d == 0) {
        p.partial_ml[(row * p.splits + split) * 2] = lsum > 0.0f ? mx : -INFINITY;
        p.partial_ml[(row * p.splits + split) * 2 + 1] = lsum;
      }
    }
  }
}

template <int D, int G>
cudaError_t Launch(const AttentionParams& p, cudaStream_t stream) {
  constexpr int kGroups = kWarps * (32 / (D / 8));
  const size_t smem = sizeof(float) * (kGroups * G * D + 2 * kGroups * G);
  cudaFuncSetAttribute(AttentionDecodeKernel<D, G>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(smem));
  const dim3 grid(p.num_tokens, p.num_kv_heads, p.splits);
  AttentionDecodeKernel<D, G><<<grid, kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

template <int D>
cudaError_t LaunchForDim(const AttentionParams& p, int group, cudaStream_t stream) {
  switch (group) {
    case 1: return Launch<D, 1>(p, stream);
    case 2: return Launch<D, 2>(p, stream);
    case 3: return Launch<D, 3>(p, stream);
    case 4: return Launch<D, 4>(p, stream);
    case 5: return Launch<D, 5>(p, stream);
    case 6: return Launch<D, 6>(p, stream);
    case 7: return Launch<D, 7>(p, stream);
    case 8: return Launch<D, 8>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

bool AttentionDecodeSupports(const AttentionParams& p) {
  const int group = p.num_q_heads / p.num_kv_heads;
  return (p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256) && group >= 1 &&
         group <= kMaxGroup && Aligned16(p.q) && Aligned16(p.k_cache) && Aligned16(p.v_cache);
}

cudaError_t LaunchAttentionDecode(const AttentionParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  const int group = p.num_q_heads / p.num_kv_heads;
  cudaError_t err = cudaErrorInvalidValue;
  if (p.head_dim == 64) err = LaunchForDim<64>(p, group, stream);
  if (p.head_dim == 128) err = LaunchForDim<128>(p, group, stream);
  if (p.head_dim == 256) err = LaunchForDim<256>(p, group, stream);
  if (err != cudaSuccess || p.splits == 1) return err;
  return LaunchMergeSplits(p, stream);
}

}  // namespace tokenfab::cuda
