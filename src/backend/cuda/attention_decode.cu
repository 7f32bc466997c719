#include <cfloat>

#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/attention_impl.cuh"
#include "backend/cuda/common_impl.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxGroup = 8;

// D: head_dim; L = D / 8 lanes per key, each holding 8 dims; K = 32 / L keys per warp step;
// kC keys per lane group per tile (fewer with more heads, for registers), so a tile is
// kC * kGroups keys. Tiles of K and V rows are staged in shared memory by cp.async, kStages - 1
// of them in flight while one is scored: the loads hold no registers, so a block keeps about
// 32 KB in flight whatever its register use. (Holding a second round of loads in registers
// instead was measured slower: 168 registers, 15% lower throughput at 64 sequences, H200.)
template <int D, int G>
struct DecodeTiling {
  static constexpr int L = D / 8;
  static constexpr int K = 32 / L;
  static constexpr int kC = G <= 4 ? 4 : 2;
  static constexpr int kGroups = kWarps * K;  // lane groups per block
  static constexpr int kTile = kC * kGroups;  // keys per tile
  static constexpr int kStages = kC == 4 ? 3 : 5;
  static constexpr size_t kStageBytes = 2 * kTile * D * sizeof(__nv_bfloat16);  // K, then V
  static constexpr size_t kStagingBytes = kStages * (kStageBytes + kThreads);   // + key flags
  // After the loop the same memory holds every lane group's (acc, m, l) for the merge.
  static constexpr size_t kMergeBytes = sizeof(float) * (kGroups * G * D + 2 * kGroups * G);
  static constexpr size_t kSmemBytes = kStagingBytes > kMergeBytes ? kStagingBytes : kMergeBytes;
};

template <int D, int G>
__global__ void __launch_bounds__(kThreads) AttentionDecodeKernel(AttentionParams p) {
  WaitForPriorGrids();
  using T = DecodeTiling<D, G>;
  constexpr int L = T::L, kC = T::kC, kGroups = T::kGroups, kTile = T::kTile;
  constexpr int kStages = T::kStages;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* smem = reinterpret_cast<float*>(smem_raw);

  const int t = blockIdx.x, g = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int sub = lane / L;        // key slot within the warp step
  const int part = lane % L;       // which 8 dims
  const int group_id = warp * T::K + sub;
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

  // Key c of this thread in a tile is tile * kTile + c * kGroups + group_id (past my_begin),
  // and the thread copies exactly the 16 bytes of its K and V rows that it scores later, so
  // the staging needs no barrier: each thread waits on its own copies.
  const int tiles = (max(0, my_end - my_begin) + kTile - 1) / kTile;
  auto stage_k = [&](int tile) {
    return reinterpret_cast<__nv_bfloat16*>(smem_raw + (tile % kStages) * T::kStageBytes);
  };
  auto flags_of = [&](int tile) {
    return smem_raw + kStages * T::kStageBytes + (tile % kStages) * kThreads + threadIdx.x;
  };
  auto key_of = [&](int tile, int c) { return my_begin + tile * kTile + c * kGroups + group_id; };
  int32_t block_of[kC];  // the cache blocks of the next tile to copy, looked up ahead
  auto look_up = [&](int tile) {
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int key = key_of(tile, c);
      block_of[c] = key < my_end ? table[key / p.block_size] : -1;
    }
  };
  auto copy = [&](int tile) {
    __nv_bfloat16* k_dst = stage_k(tile);
    __nv_bfloat16* v_dst = k_dst + kTile * D;
    unsigned present = 0;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int key = key_of(tile, c);
      const int32_t block = block_of[c];
      const int offset = (c * kGroups + group_id) * D + part * 8;
      // Keys past the window and unassigned blocks are zeros (and masked when scored).
      const bool ok = key < my_end && block >= 0 && block < p.num_blocks;
      const int64_t src = ok ? (static_cast<int64_t>(block) * p.block_size + key % p.block_size) *
                                       head_stride + static_cast<int64_t>(g) * D + part * 8
                             : 0;
      CpAsync16(k_dst + offset, p.k_cache + src, ok ? 16 : 0);
      CpAsync16(v_dst + offset, p.v_cache + src, ok ? 16 : 0);
      present |= (ok ? 1u : 0u) << c;
    }
    *flags_of(tile) = static_cast<unsigned char>(present);
  };

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < tiles) {
      look_up(s);
      copy(s);
    }
    CpAsyncCommit();  // one group per tile slot, empty or not, so the wait count is uniform
  }
  for (int tile = 0; tile < tiles; ++tile) {
    const int ahead = tile + kStages - 1;  // goes into the slot the previous tile freed
    if (ahead < tiles) look_up(ahead);     // in flight while this tile is scored
    CpAsyncWait<kStages - 2>();            // this tile's copies have landed
    const __nv_bfloat16* k_src = stage_k(tile);
    const __nv_bfloat16* v_src = k_src + kTile * D;
    const unsigned present = *flags_of(tile);
    float s[kC][G];
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      float kf[8];
      Unpack(*reinterpret_cast<const Bf16x8*>(k_src + (c * kGroups + group_id) * D + part * 8),
             kf);
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
        if (!(present >> c & 1u)) s[c][h] = -FLT_MAX;  // past the window or an unassigned block
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
      Unpack(*reinterpret_cast<const Bf16x8*>(v_src + (c * kGroups + group_id) * D + part * 8),
             vf);
#pragma unroll
      for (int h = 0; h < G; ++h) {
        const float e = present >> c & 1u ? __expf(s[c][h] - m[h]) : 0.0f;
        l[h] += e;
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[h][i] += e * vf[i];
      }
    }
    if (ahead < tiles) copy(ahead);
    CpAsyncCommit();
  }
  CpAsyncWait<0>();
  __syncthreads();  // every thread's copies are done before the staging memory is reused

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
  constexpr size_t smem = DecodeTiling<D, G>::kSmemBytes;
  const auto kernel = AttentionDecodeKernel<D, G>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(smem));
  const dim3 grid(p.num_tokens, p.num_kv_heads, p.splits);
  LaunchPdl(kernel, grid, kThreads, smem, stream, p);
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
