#include <algorithm>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_impl.cuh"
#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/paged_kv_impl.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 128;  // keys per tile: one per thread when scoring

template <bool kVec>
__global__ void __launch_bounds__(kThreads) AttentionKernel(AttentionParams p) {
  WaitForPriorGrids();
  extern __shared__ float smem[];
  const int group = p.num_q_heads / p.num_kv_heads;
  const int d = p.head_dim;
  float* q_s = smem;                             // [group][d], pre-scaled
  float* scores = q_s + group * d;               // [group][kTile]
  float* m_s = scores + group * kTile;           // [group]
  float* l_s = m_s + group;                      // [group]
  float* alpha_s = l_s + group;                  // [group]
  float* red = alpha_s + group;                  // [key groups][group][d]

  const int t = blockIdx.x, g = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int seq = SequenceOfToken(p.query_start, p.num_seqs, t);
  const int pos = p.positions[t];
  const KeyRange keys = SplitKeyRange(pos, p.sliding_window, split, p.splits);
  const int my_begin = keys.begin, my_end = keys.end;
  const int32_t* table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
  const PageMap pages(p.block_size);
  const int64_t head_stride = static_cast<int64_t>(p.num_kv_heads) * d;

  for (int i = tid; i < group * d; i += kThreads) {
    const int gi = i / d, e = i % d;
    q_s[i] = ToFloat(p.q[(static_cast<int64_t>(t) * p.num_q_heads + g * group + gi) * d + e]) *
             p.scale;
  }
  if (tid < group) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.0f;
  }
  // Value accumulation: with d <= 128, `key_groups` groups of d threads split the keys; with
  // d > 128 each thread owns dims tid and tid + 128.
  const int key_groups = d >= kThreads ? 1 : kThreads / d;
  const int my_kg = d >= kThreads ? 0 : tid / d;
  const int d0 = d >= kThreads ? tid : tid % d;
  const bool has_d0 = my_kg < key_groups && d0 < d;
  const bool has_d1 = d > kThreads && tid + kThreads < d;
  float acc0[kAttentionMaxGroup], acc1[kAttentionMaxGroup];
#pragma unroll
  for (int gi = 0; gi < kAttentionMaxGroup; ++gi) acc0[gi] = acc1[gi] = 0.0f;
  __syncthreads();

  for (int tile = my_begin; tile < my_end; tile += kTile) {
    const int n = min(kTile, my_end - tile);
    if (tid < n) {  // score key `tile + tid` against every head of the group
      const int kpos = tile + tid;
      const int page = pages.Page(kpos);
      const int32_t block = table[page];
      float sc[kAttentionMaxGroup];
#pragma unroll
      for (int gi = 0; gi < kAttentionMaxGroup; ++gi) sc[gi] = 0.0f;
      if (block >= 0 && block < p.num_blocks) {
        const __nv_bfloat16* k =
            p.k_cache +
            (static_cast<int64_t>(block) * p.block_size + pages.Row(kpos, page)) * head_stride +
            static_cast<int64_t>(g) * d;
        if constexpr (kVec) {
          for (int e = 0; e < d; e += 8) {
            float kv[8];
            Unpack(*reinterpret_cast<const Bf16x8*>(k + e), kv);
#pragma unroll
            for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
              if (gi < group) {
#pragma unroll
                for (int j = 0; j < 8; ++j) sc[gi] += q_s[gi * d + e + j] * kv[j];
              }
            }
          }
        } else {
          for (int e = 0; e < d; ++e) {
            const float kv = ToFloat(k[e]);
#pragma unroll
            for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
              if (gi < group) sc[gi] += q_s[gi * d + e] * kv;
            }
          }
        }
      }
#pragma unroll
      for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
        if (gi < group) scores[gi * kTile + tid] = sc[gi];
      }
    }
    __syncthreads();
    for (int gi = warp; gi < group; gi += kThreads / 32) {
      float* s = scores + gi * kTile;
      float mx = -INFINITY;
      for (int j = lane; j < n; j += 32) mx = fmaxf(mx, s[j]);
      mx = WarpMax(mx);
      const float m_old = m_s[gi];
      const float m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
      for (int j = lane; j < n; j += 32) {
        const float e = __expf(s[j] - m_new);
        s[j] = e;
        sum += e;
      }
      sum = WarpSum(sum);
      __syncwarp();  // every lane has read m_s[gi] before lane 0 updates it
      if (lane == 0) {
        const float alpha = m_old == -INFINITY ? 0.0f : __expf(m_old - m_new);
        l_s[gi] = l_s[gi] * alpha + sum;
        m_s[gi] = m_new;
        alpha_s[gi] = alpha;
      }
    }
    __syncthreads();
#pragma unroll
    for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
      if (gi < group) {
        acc0[gi] *= alpha_s[gi];
        acc1[gi] *= alpha_s[gi];
      }
    }
    if (has_d0) {
      for (int j = my_kg; j < n; j += key_groups) {
        const int kpos = tile + j;
        const int page = pages.Page(kpos);
        const int32_t block = table[page];
        if (block < 0 || block >= p.num_blocks) continue;
        const __nv_bfloat16* v =
            p.v_cache +
            (static_cast<int64_t>(block) * p.block_size + pages.Row(kpos, page)) * head_stride +
            static_cast<int64_t>(g) * d;
        const float v0 = ToFloat(v[d0]);
        const float v1 = has_d1 ? ToFloat(v[d0 + kThreads]) : 0.0f;
#pragma unroll
        for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
          if (gi < group) {
            const float pj = scores[gi * kTile + j];
            acc0[gi] += pj * v0;
            acc1[gi] += pj * v1;
          }
        }
      }
    }
    __syncthreads();
  }

  // Sum the key groups' partial accumulators.
  if (key_groups > 1) {
    if (has_d0) {
#pragma unroll
      for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
        if (gi < group) red[(my_kg * group + gi) * d + d0] = acc0[gi];
      }
    }
    __syncthreads();
    if (my_kg == 0 && has_d0) {
#pragma unroll
      for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
        if (gi < group) {
          float sum = 0.0f;
          for (int kg = 0; kg < key_groups; ++kg) sum += red[(kg * group + gi) * d + d0];
          acc0[gi] = sum;
        }
      }
    }
  }
  if (my_kg != 0 || !has_d0) return;
#pragma unroll
  for (int gi = 0; gi < kAttentionMaxGroup; ++gi) {
    if (gi >= group) continue;
    const int h = g * group + gi;
    const int64_t row = static_cast<int64_t>(t) * p.num_q_heads + h;
    if (p.splits == 1) {
      const float inv = l_s[gi] > 0.0f ? 1.0f / l_s[gi] : 0.0f;
      p.out[row * d + d0] = __float2bfloat16(acc0[gi] * inv);
      if (has_d1) p.out[row * d + d0 + kThreads] = __float2bfloat16(acc1[gi] * inv);
    } else {
      float* part = p.partial_acc + (row * p.splits + split) * d;
      part[d0] = acc0[gi];
      if (has_d1) part[d0 + kThreads] = acc1[gi];
      if (d0 == 0) {
        p.partial_ml[(row * p.splits + split) * 2] = m_s[gi];
        p.partial_ml[(row * p.splits + split) * 2 + 1] = l_s[gi];
      }
    }
  }
}

// Merges the splits of every (token, head) row: each thread takes kWidth columns of one row
// (blockIdx.x: the token; blockIdx.y * blockDim.x + threadIdx.x: the run of columns over the
// token's heads), with all of a chunk's loads in flight at once.
template <int kWidth>
__global__ void MergeSplitsKernel(AttentionParams p) {
  WaitForPriorGrids();
  const int runs = p.head_dim / kWidth;
  const int idx = blockIdx.y * blockDim.x + threadIdx.x;
  if (idx >= p.num_q_heads * runs) return;
  const int64_t row = static_cast<int64_t>(p.first_token + blockIdx.x) * p.num_q_heads + idx / runs;
  const int col = idx % runs * kWidth;
  float o[1][kWidth];
  MergeSplitColumns<1, kWidth, 16>(p.partial_acc, p.partial_ml, row, p.splits, p.head_dim, col, 0,
                                   o);
  StoreBf16<kWidth>(p.out + row * p.head_dim + col, o[0]);
}

}  // namespace

int AttentionSplits(int num_tokens, int num_kv_heads, int max_seq_len, int num_sms) {
  // Enough blocks for about two per multiprocessor, at least 64 keys per split. (Aiming for 8
  // blocks per SM with 32-key splits was measured slower on the H100: 163 vs 167 tok/s at batch
  // 1 and 6731 vs 7185 at batch 64, both at 600 context; the merge costs more than it hides.)
  const int blocks = num_tokens * num_kv_heads;
  if (blocks >= 2 * num_sms) return 1;
  const int by_occupancy = (2 * num_sms + blocks - 1) / blocks;
  const int by_length = (max_seq_len + 63) / 64;
  return std::max(1, std::min({by_occupancy, by_length, 64}));
}

cudaError_t LaunchAttention(const AttentionParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int d = p.head_dim;
  const int key_groups = d >= kThreads ? 1 : kThreads / d;
  const size_t smem =
      sizeof(float) * (group * d + group * kTile + 3 * group + key_groups * group * d);
  const dim3 grid(p.num_tokens, p.num_kv_heads, p.splits);
  const bool vec = d % 8 == 0 && Aligned16(p.k_cache);
  if (vec) {
    cudaFuncSetAttribute(AttentionKernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    LaunchPdl(AttentionKernel<true>, grid, kThreads, smem, stream, p);
  } else {
    cudaFuncSetAttribute(AttentionKernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(smem));
    LaunchPdl(AttentionKernel<false>, grid, kThreads, smem, stream, p);
  }
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess || p.splits == 1) return err;
  return LaunchMergeSplits(p, stream);
}

cudaError_t LaunchMergeSplits(const AttentionParams& p, cudaStream_t stream) {
  if (p.num_tokens <= p.first_token) return cudaSuccess;
  const bool vec = p.head_dim % 4 == 0;
  const int runs = p.num_q_heads * (vec ? p.head_dim / 4 : p.head_dim);
  const dim3 grid(p.num_tokens - p.first_token, (runs + kThreads - 1) / kThreads);
  LaunchPdl(vec ? MergeSplitsKernel<4> : MergeSplitsKernel<1>, grid, kThreads, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
