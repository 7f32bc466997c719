#include <cfloat>

#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/attention_impl.cuh"
#include "backend/cuda/common_impl.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;

// D: head_dim; L = D / 8 lanes per key; K = 32 / L keys per warp step; kC keys per lane group
// per round (fewer with more heads, for registers). (Issuing the next round's loads before
// scoring this one was measured slower: 168 registers instead of 128 for G = 4, and 15% lower
// decode throughput at 64 sequences on an H200.)
template <int D, int G>
__global__ void __launch_bounds__(kWarps * 32) AttentionDecodeKernel(AttentionParams p) {
  WaitForPriorGrids();
  constexpr int L = D / 8;
  constexpr int K = 32 / L;
  constexpr int kC = G <= 4 ? 4 : 2;
  constexpr int kGroups = kWarps * K;  // lane groups per block
  extern __shared__ float smem[];      // [kGroups][G][D] acc, then [kGroups][G] m, l

  const int t = blockIdx.x, g = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int sub = lane / L;        // key slot within the warp step
  const int part = lane % L;       // which 8 dims
  const int group_id = warp * K + sub;
  const int seq = SequenceOfToken(p.query_start, p.num_seqs, t);
  const int pos = p.positions[t];
  const KeyRange keys = SplitKeyRange(pos, p.sliding_window, split, p.splits);
  const int my_begin = keys.begin, my_end = keys.end;
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

  // The K and V rows of the round starting at `base`; keys past the window are absent.
  auto load_round = [&](int base, Bf16x8 (&kv)[kC], Bf16x8 (&vv)[kC], bool (&present)[kC]) {
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int key = base + c * kGroups + sub;
      const Bf16x8* kr = key < my_end ? row_of(key, p.k_cache) : nullptr;
      const Bf16x8* vr = key < my_end ? row_of(key, p.v_cache) : nullptr;
      present[c] = kr != nullptr;
      kv[c] = kr ? LoadReadOnly(kr) : Bf16x8{};
      vv[c] = vr ? LoadReadOnly(vr) : Bf16x8{};
    }
  };

  // Each round a warp takes kC * K keys (K lane groups, kC keys each), loads all their K and V
  // rows first, scores them, and folds them into the running softmax with one rescale. The
  // loop bound is the warp's, not the lane group's, so lanes stay converged for the shuffles.
  constexpr int kStride = kC * kGroups;
  Bf16x8 kv[kC], vv[kC];
  bool present[kC];
  for (int base = my_begin + warp * K; base < my_end; base += kStride) {
    load_round(base, kv, vv, present);
    float s[kC][G];
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      float kf[8];
      Unpack(kv[c], kf);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) dot += q[h][i] * kf[i];
        s[c][h] = dot;
      }
    }
#pragma unroll
    for (int c = 0; c < kC; ++c) {
#pragma unroll
      for (int h = 0; h < G; ++h) {
#pragma unroll
        for (int off = L / 2; off > 0; off >>= 1) s[c][h] += __shfl_xor_sync(kFullMask, s[c][h], off);
        if (!present[c]) s[c][h] = -FLT_MAX;  // past the window or an unassigned block
      }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {
      float m_new = m[h];
#pragma unroll
      for (int c = 0; c < kC; ++c) m_new = fmaxf(m_new, s[c][h]);
      const float scale = __expf(m[h] - m_new);
      l[h] *= scale;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[h][i] *= scale;
      m[h] = m_new;
    }
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      float vf[8];
      Unpack(vv[c], vf);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        const float e = present[c] ? __expf(s[c][h] - m[h]) : 0.0f;
        l[h] += e;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[h][i] += e * vf[i];
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
  if (p.splits == 1) return;
  // The last split of this (token, KV head) to finish merges all of them, so no second kernel
  // is launched. Its ticket counter goes back to zero for the next step (and graph replay).
  __shared__ int ticket;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) ticket = atomicAdd(&p.split_counters[t * p.num_kv_heads + g], 1);
  __syncthreads();
  if (ticket != p.splits - 1) return;
  __threadfence();
  // Merge in two parallel passes: the weight of every (head, split), then every output element
  // as a weighted sum whose loads are all independent.
  float* weight_s = smem;  // [G][splits]; the block's lane-group state is no longer needed
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * p.splits; idx += kWarps * 32) {
    const int h = idx / p.splits, s2 = idx % p.splits;
    const int64_t row = static_cast<int64_t>(t) * p.num_q_heads + g * G + h;
    weight_s[idx] = __ldcg(p.partial_ml + (row * p.splits + s2) * 2);  // the split's max
  }
  __syncthreads();
  if (threadIdx.x < G) {  // per head: weights e^(m_s - M) / sum_s e^(m_s - M) l_s
    const int h = threadIdx.x;
    const int64_t row = static_cast<int64_t>(t) * p.num_q_heads + g * G + h;
    float mx = -INFINITY;
    for (int s2 = 0; s2 < p.splits; ++s2) mx = fmaxf(mx, weight_s[h * p.splits + s2]);
    float denom = 0.0f;
    for (int s2 = 0; s2 < p.splits; ++s2) {
      const float ms = weight_s[h * p.splits + s2];
      const float w = ms == -INFINITY ? 0.0f : __expf(ms - mx);
      weight_s[h * p.splits + s2] = w;
      denom += w * __ldcg(p.partial_ml + (row * p.splits + s2) * 2 + 1);
    }
    const float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
    for (int s2 = 0; s2 < p.splits; ++s2) weight_s[h * p.splits + s2] *= inv;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += kWarps * 32) {
    const int h = idx / D, d = idx % D;
    const int64_t row = static_cast<int64_t>(t) * p.num_q_heads + g * G + h;
    const float* part = p.partial_acc + row * p.splits * D + d;
    float sum = 0.0f;
#pragma unroll 8
    for (int s2 = 0; s2 < p.splits; ++s2) sum += weight_s[h * p.splits + s2] * __ldcg(part + s2 * D);
    p.out[row * D + d] = __float2bfloat16(sum);
  }
  if (threadIdx.x == 0) p.split_counters[t * p.num_kv_heads + g] = 0;
}

template <int D, int G>
cudaError_t Launch(const AttentionParams& p, cudaStream_t stream) {
  constexpr int kGroups = kWarps * (32 / (D / 8));
  const size_t smem = sizeof(float) * (kGroups * G * D + 2 * kGroups * G);
  const auto kernel = AttentionDecodeKernel<D, G>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(smem));
  const dim3 grid(p.num_tokens, p.num_kv_heads, p.splits);
  LaunchPdl(kernel, grid, kWarps * 32, smem, stream, p);
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
  return err;  // splits are merged by the kernel's last block
}

}  // namespace tokenfab::cuda
