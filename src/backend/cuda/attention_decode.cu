#include <cfloat>

#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/attention_impl.cuh"
#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/mma_impl.cuh"
#include "backend/cuda/paged_kv_impl.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;

// The end of both kernels: the block's kGroups lane groups have published their online-softmax
// state in shared memory ([kGroups][G][D] acc, then [kGroups][G] m in natural-log units, then
// l); this merges them into the output or, with splits, into the split's partial, and the last
// split of the (token, KV head) to finish merges all of them. Each thread takes four columns of
// one head at a time (float4 in shared memory and in the partials). kSplit: p.splits > 1; the
// kernels are compiled for each case, so the split merge's registers (it keeps a chunk of
// splits in flight) do not cost the unsplit kernel, which big batches run, its occupancy.
template <int D, int G, int kGroups, bool kSplit>
__device__ __forceinline__ void MergeGroupsAndStore(const AttentionParams& p, float* smem, int t,
                                                    int g, int split) {
  constexpr int kCols = D / 4;
  constexpr int kThreads = kWarps * 32;
  const float* acc_s = smem;
  const float* m_s = acc_s + kGroups * G * D;
  const float* l_s = m_s + kGroups * G;
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * kCols; idx += kThreads) {
    const int h = idx / kCols, col = idx % kCols * 4;
    float mx = -FLT_MAX;
#pragma unroll
    for (int gr = 0; gr < kGroups; ++gr) mx = fmaxf(mx, m_s[gr * G + h]);
    float lsum = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int gr = 0; gr < kGroups; ++gr) {
      const float w = l_s[gr * G + h] > 0.0f ? __expf(m_s[gr * G + h] - mx) : 0.0f;
      const float4 a = *reinterpret_cast<const float4*>(acc_s + (gr * G + h) * D + col);
      lsum += w * l_s[gr * G + h];
      o.x += w * a.x;
      o.y += w * a.y;
      o.z += w * a.z;
      o.w += w * a.w;
    }
    const int64_t row = static_cast<int64_t>(t) * p.num_q_heads + g * G + h;
    if constexpr (!kSplit) {
      const float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
      const float v[4] = {o.x * inv, o.y * inv, o.z * inv, o.w * inv};
      StoreBf16<4>(p.out + row * D + col, v);
    } else {
      *reinterpret_cast<float4*>(p.partial_acc + (row * p.splits + split) * D + col) = o;
      if (col == 0) {
        reinterpret_cast<float2*>(p.partial_ml)[row * p.splits + split] =
            make_float2(lsum > 0.0f ? mx : -INFINITY, lsum);
      }
    }
  }
  if constexpr (!kSplit) return;
  // The last split of this (token, KV head) to finish merges all of them, so no second kernel
  // is launched. Its ticket counter goes back to zero for the next step (and graph replay).
  __shared__ int ticket;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) ticket = atomicAdd(&p.split_counters[t * p.num_kv_heads + g], 1);
  __syncthreads();
  if (ticket != p.splits - 1) return;
  __threadfence();
  // Every thread merges kVecs float4 columns of one head over all splits, loading a chunk of
  // splits at once: with up to 16 splits (8 with two columns a thread) the whole merge is one
  // round trip to L2, where weights first and sums after would be two or more.
  constexpr int kShare = (G * kCols + kThreads - 1) / kThreads;
  constexpr int kVecs = kShare <= 1 ? 1 : kShare <= 2 ? 2 : 4;
  static_assert(kCols % kVecs == 0, "a head's columns split evenly over its threads");
  constexpr int kThreadsPerHead = kCols / kVecs;
  const int h = threadIdx.x / kThreadsPerHead;
  if (h < G) {
    const int col = threadIdx.x % kThreadsPerHead * 4;
    const int64_t row = static_cast<int64_t>(t) * p.num_q_heads + g * G + h;
    float o[kVecs][4];
    MergeSplitColumns<kVecs, 4, 16 / kVecs>(p.partial_acc, p.partial_ml, row, p.splits, D, col,
                                            kThreadsPerHead * 4, o);
#pragma unroll
    for (int k = 0; k < kVecs; ++k)
      StoreBf16<4>(p.out + row * D + col + k * kThreadsPerHead * 4, o[k]);
  }
  if (threadIdx.x == 0) p.split_counters[t * p.num_kv_heads + g] = 0;
}

// The CUDA-core kernel (head_dim 256). D: head_dim; L = D / 8 lanes per key; K = 32 / L keys
// per warp step; kC keys per lane group per round (fewer with more heads, for registers).
// (Issuing the next round's loads before scoring this one was measured slower: 168 registers
// instead of 128 for G = 4, and 15% lower decode throughput at 64 sequences on an H200.)
template <int D, int G, bool kSplit>
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

  const PageMap pages(p.block_size);
  auto row_of = [&](int kpos, const __nv_bfloat16* cache) -> const Bf16x8* {
    const int page = pages.Page(kpos);
    const int32_t block = table[page];
    if (block < 0 || block >= p.num_blocks) return nullptr;
    return reinterpret_cast<const Bf16x8*>(
        cache + (static_cast<int64_t>(block) * p.block_size + pages.Row(kpos, page)) * head_stride +
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
  MergeGroupsAndStore<D, G, kGroups, kSplit>(p, smem, t, g, split);
}

// The same work on tensor cores, for head_dim 64 and 128: each warp takes 16 keys at a time and
// computes S = Q K^T with the G query heads as the rows of an m16n8k16 tile (rows G..15 zero),
// then O^T += V^T P^T, with the head dims as rows and the heads as columns, so that the
// probabilities go from S's accumulators to P^T's operand registers without moving. Fragments
// are loaded straight from the cache, 16 bytes per lane: the dot product does not care which
// dims a k-step sums, so Q and K take the same permutation of dims (lane quad c holds dims
// 32j + 8c .. 8c + 7 for steps 2j and 2j + 1), and V^T's rows are whichever dims a lane loaded
// (64i + 8r + 2w, +1), its pairs of keys packed by byte permutes. That is about 9 instructions
// per key and warp, where the CUDA-core kernel needs about 75 for a group of 4 heads.
//
// kSplit (p.splits > 1: small batches, whose keys are split over many blocks): each warp loads its
// first tile of K and V before waiting for the kernel before it (PrepareQkv, which writes this
// step's keys and Q), when every key of the tile predates this step. At batch 1 a split is one
// tile per warp, so the whole read of the cache overlaps that kernel's tail; it costs registers
// (the tile lives across the wait), which bigger batches keep for occupancy.
template <int D, int G, bool kSplit>
__global__ void __launch_bounds__(kWarps * 32) AttentionDecodeMmaKernel(AttentionParams p) {
  static_assert(D % 64 == 0 && G <= 8, "rows 0..7 of the tile hold the group's heads");
  constexpr int kSlices = D / 32;    // 32-dim slices of Q K^T, two k16 steps each
  constexpr int kDimTiles = D / 16;  // m16 tiles of O^T
  constexpr int kVLoads = D / 64;    // 16-byte V loads per key and lane
  constexpr int kTileKeys = 16;
  extern __shared__ float smem[];  // [kWarps][G][D] acc, then [kWarps][G] m, l
  if constexpr (!kSplit) WaitForPriorGrids();

  // Positions, sequence starts and block tables come from the host before the step, so the
  // first tile's cache rows are found before the wait.
  const int t = blockIdx.x, g = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int r = lane >> 2, c = lane & 3;  // fragment row (head, key or dim) and column pair
  const int seq = SequenceOfToken(p.query_start, p.num_seqs, t);
  const int pos = p.positions[t];
  const KeyRange keys = SplitKeyRange(pos, p.sliding_window, split, p.splits);
  const int32_t* table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
  const PageMap pages(p.block_size);
  const int64_t head_stride = static_cast<int64_t>(p.num_kv_heads) * D;
  const __nv_bfloat16* k_head = p.k_cache + static_cast<int64_t>(g) * D;
  const __nv_bfloat16* v_head = p.v_cache + static_cast<int64_t>(g) * D;

  // Lanes i and i + 16 find the cache row of key base + i (-1: absent); lanes needing another
  // key's row take it by shuffle.
  auto row_of = [&](int base) {
    const int key = base + (lane & 15);
    int row = -1;
    if (key < keys.end) {
      const int page = pages.Page(key);
      const int32_t block = table[page];
      if (block >= 0 && block < p.num_blocks) row = block * p.block_size + pages.Row(key, page);
    }
    return row;
  };
  // K: key 8n + r of n-tile n. V: keys 2c, 2c + 1, 2c + 8, 2c + 9, dims 64i + 8r .. + 7.
  auto load_tile = [&](int row, uint4(&kr)[2][kSlices], uint4(&vr)[4][kVLoads]) {
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      const int rk = __shfl_sync(kFullMask, row, 8 * n + r);
      const __nv_bfloat16* src = k_head + static_cast<int64_t>(rk) * head_stride + 8 * c;
#pragma unroll
      for (int j = 0; j < kSlices; ++j) {
        kr[n][j] = rk >= 0 ? __ldg(reinterpret_cast<const uint4*>(src + 32 * j))
                           : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int rv = __shfl_sync(kFullMask, row, 2 * c + (e & 1) + 8 * (e >> 1));
      const __nv_bfloat16* src = v_head + static_cast<int64_t>(rv) * head_stride + 8 * r;
#pragma unroll
      for (int i = 0; i < kVLoads; ++i) {
        vr[e][i] = rv >= 0 ? __ldg(reinterpret_cast<const uint4*>(src + 64 * i))
                           : make_uint4(0, 0, 0, 0);
      }
    }
  };
  const int first = keys.begin + warp * kTileKeys;
  const int first_row = kSplit ? row_of(first) : -1;
  uint4 kr[2][kSlices], vr[4][kVLoads];
  bool preloaded = false;
  if constexpr (kSplit) {
    // Keys before the sequence's first query of this step were written by earlier steps,
    // which finished before the kernel before this one started (every kernel waits for its
    // predecessor before letting its successor start).
    const int step_begin = p.positions[p.query_start[seq]];
    preloaded = __all_sync(kFullMask, first_row < 0 || first + (lane & 15) < step_begin);
    if (preloaded) load_tile(first_row, kr, vr);
    WaitForPriorGrids();
  }

  // Q of head r as A operand words: slice j holds dims 32j + 8c .. 32j + 8c + 7.
  uint4 q[kSlices];
#pragma unroll
  for (int j = 0; j < kSlices; ++j) {
    q[j] = make_uint4(0, 0, 0, 0);
    if (r < G) {
      q[j] = __ldg(reinterpret_cast<const uint4*>(
          p.q + (static_cast<int64_t>(t) * p.num_q_heads + g * G + r) * D + 32 * j + 8 * c));
    }
  }
  const float qk_scale = p.scale * 1.4426950408889634f;  // scores in log2 units, for exp2
  float acc[kDimTiles][4];
#pragma unroll
  for (int mt = 0; mt < kDimTiles; ++mt) acc[mt][0] = acc[mt][1] = acc[mt][2] = acc[mt][3] = 0.0f;
  float m = -FLT_MAX;  // running max of head r (the same in the four lanes of its quad)
  float l = 0.0f;      // this lane's share of head r's running sum

  for (int base = first; base < keys.end; base += kWarps * kTileKeys) {
    const int row = kSplit && base == first ? first_row : row_of(base);
    // (The ballot before the loads: after them, ptxas keeps 30 more registers live.)
    const unsigned present = __ballot_sync(kFullMask, row >= 0) & 0xffffu;
    if (!preloaded || base != first) load_tile(row, kr, vr);

    // S for keys 8n + 2c, 8n + 2c + 1 of head r in s[n][0..1] (s[n][2..3]: the zero rows).
    float s[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int j = 0; j < kSlices; ++j) {
        const uint32_t a_lo[4] = {q[j].x, 0u, q[j].y, 0u};
        const uint32_t a_hi[4] = {q[j].z, 0u, q[j].w, 0u};
        Mma(s[n], a_lo, kr[n][j].x, kr[n][j].y);
        Mma(s[n], a_hi, kr[n][j].z, kr[n][j].w);
      }
    }
    // Online softmax over this lane's four keys: 2c, 2c + 1, 8 + 2c, 9 + 2c of the tile.
    float x[4] = {s[0][0], s[0][1], s[1][0], s[1][1]};
    float mx = -INFINITY;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int tile_key = 8 * (e >> 1) + 2 * c + (e & 1);
      x[e] = (present >> tile_key) & 1u ? x[e] * qk_scale : -INFINITY;
      mx = fmaxf(mx, x[e]);
    }
    mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
    const float m_new = fmaxf(m, mx);
    const float alpha = exp2f(m - m_new);
    float pe[4], sum = 0.0f;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      pe[e] = exp2f(x[e] - m_new);  // 0 for absent keys
      sum += pe[e];
    }
    l = l * alpha + sum;
    m = m_new;
    // O^T's columns are heads 2c and 2c + 1: their rescale factors live in quads 2c and 2c + 1.
    const float alpha_even = __shfl_sync(kFullMask, alpha, 8 * c);
    const float alpha_odd = __shfl_sync(kFullMask, alpha, 8 * c + 4);
    const uint32_t b0 = PackBf16(pe[0], pe[1]), b1 = PackBf16(pe[2], pe[3]);
#pragma unroll
    for (int mt = 0; mt < kDimTiles; ++mt) {
      acc[mt][0] *= alpha_even;
      acc[mt][1] *= alpha_odd;
      acc[mt][2] *= alpha_even;
      acc[mt][3] *= alpha_odd;
      const int i = mt / 4, w = mt % 4;
      const uint32_t v0 = (&vr[0][i].x)[w], v1 = (&vr[1][i].x)[w];
      const uint32_t v2 = (&vr[2][i].x)[w], v3 = (&vr[3][i].x)[w];
      // Row r: dim 64i + 8r + 2w (the low halves); row r + 8: the next dim (the high halves).
      const uint32_t a[4] = {__byte_perm(v0, v1, 0x5410), __byte_perm(v0, v1, 0x7632),
                             __byte_perm(v2, v3, 0x5410), __byte_perm(v2, v3, 0x7632)};
      Mma(acc[mt], a, b0, b1);
    }
  }

  // Publish the warp's state for the block merge: acc[mt] holds dims d = 64i + 8r + 2w and
  // d + 1 of heads 2c and 2c + 1.
  l += __shfl_xor_sync(kFullMask, l, 1);
  l += __shfl_xor_sync(kFullMask, l, 2);
  float* acc_s = smem;
  float* m_s = acc_s + kWarps * G * D;
  float* l_s = m_s + kWarps * G;
#pragma unroll
  for (int mt = 0; mt < kDimTiles; ++mt) {
    const int d = 64 * (mt / 4) + 8 * r + 2 * (mt % 4);
#pragma unroll
    for (int odd = 0; odd < 2; ++odd) {
      const int h = 2 * c + odd;
      if (h < G) {
        acc_s[(warp * G + h) * D + d] = acc[mt][odd];
        acc_s[(warp * G + h) * D + d + 1] = acc[mt][2 + odd];
      }
    }
  }
  if (c == 0 && r < G) {
    m_s[warp * G + r] = m * 0.6931471805599453f;  // back to natural-log units
    l_s[warp * G + r] = l;
  }
  MergeGroupsAndStore<D, G, kWarps, kSplit>(p, smem, t, g, split);
}

// Head dims 64 and 128 run on tensor cores; 256 (whose fragments would not fit in registers)
// on CUDA cores.
template <int D, int G>
cudaError_t Launch(const AttentionParams& p, cudaStream_t stream) {
  constexpr bool kMma = D <= 128;
  constexpr int kGroups = kMma ? kWarps : kWarps * (32 / (D / 8));
  const size_t smem = sizeof(float) * (kGroups * G * D + 2 * kGroups * G);
  void (*kernel)(AttentionParams) = nullptr;
  if constexpr (kMma) {
    kernel =
        p.splits > 1 ? AttentionDecodeMmaKernel<D, G, true> : AttentionDecodeMmaKernel<D, G, false>;
  } else {
    kernel = p.splits > 1 ? AttentionDecodeKernel<D, G, true> : AttentionDecodeKernel<D, G, false>;
  }
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
