#include <cfloat>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/flash_prefill_wgmma.cuh"
#include "backend/cuda/flash_softmax_impl.cuh"
#include "backend/cuda/mbarrier_impl.cuh"
#include "backend/cuda/mma_impl.cuh"
#include "backend/cuda/paged_kv_impl.cuh"
#include "backend/cuda/wgmma_impl.cuh"

namespace tokenfab::cuda {
namespace {

// S = Q K^T for a warpgroup's 64 query rows against one K tile, D / 16 k-steps of 16
// dimensions (4 per 64-dimension panel), issued as one wgmma group (not waited for).
template <int D, int kRows, int kN>
__device__ __forceinline__ void IssueScores(float (&s)[kN / 8][4], uint64_t q_desc,
                                            uint64_t k_desc) {
  WgmmaFence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint32_t q_step = ((kk >> 2) * kRows * 128 + (kk & 3) * 32) >> 4;
    const uint32_t k_step = ((kk >> 2) * kN * 128 + (kk & 3) * 32) >> 4;
    WgmmaSS<0>(s, q_desc + q_step, k_desc + k_step, kk > 0);
  }
  WgmmaCommit();
}

// O += P V for one V tile, kN / 16 k-steps of 16 keys, issued as one wgmma group.
template <int D, int kN>
__device__ __forceinline__ void IssueOutput(float (&o)[D / 8][4], const uint32_t (&a)[kN / 16][4],
                                            uint64_t v_desc) {
  WgmmaFence();
  FenceRegisters(o);
#pragma unroll
  for (int kk = 0; kk < kN / 16; ++kk) WgmmaRS<1>(o, a[kk], v_desc + ((kk * 16 * 128) >> 4), 1);
  WgmmaCommit();
}

// The probabilities as bf16 A fragments: k-step kk covers keys 16 kk .. 16 kk + 15.
template <int kN>
__device__ __forceinline__ void PackProbabilities(const float (&s)[kN / 8][4],
                                                  uint32_t (&a)[kN / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < kN / 16; ++kk) {
    a[kk][0] = PackBf16(s[2 * kk][0], s[2 * kk][1]);
    a[kk][1] = PackBf16(s[2 * kk][2], s[2 * kk][3]);
    a[kk][2] = PackBf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    a[kk][3] = PackBf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

// Warp-specialised: kWG consumer warpgroups of 64 query rows each compute S = Q K^T, the online
// softmax and O += P V tile by tile; a producer warpgroup copies Q and the K/V tiles of kN keys
// into a ring of kStages stages. Each stage has a "full" barrier (the producers' arrivals, once
// their copies of it landed) and an "empty" one (every consumer warp's arrival once its P V
// has read the stage), so a warpgroup waits only for its next tile and the warpgroups drift
// apart: one's softmax runs under another's matmuls instead of all of them meeting at a block
// barrier every tile. The producers resolve each tile row's page once (ResolvedKvRows), so a
// 16-byte copy is a shared-memory read, an add and a cp.async.
//
// Causal tiles further down the prompt see more keys: the grid runs them first, every head's
// before any head's next (blocks start in x order, so the heads are x): the last blocks to
// start are the shortest, and the heads of one KV group read its keys together in the L2.
template <int D, int kWG, int kN, int kStages>
struct WsTile {
  static constexpr int kProducerWarps = 4;
  static constexpr int kConsumerThreads = 128 * kWG;
  static constexpr int kProducerThreads = 32 * kProducerWarps;
  static constexpr int kThreads = kConsumerThreads + kProducerThreads;
  static constexpr int kRows = 64 * kWG;
  static constexpr int kQElems = kRows * D;
  static constexpr int kKvElems = kN * D;
  static constexpr size_t kSmem = 1024 + sizeof(__nv_bfloat16) * (kQElems + kStages * 2 * kKvElems);
  // The producer warpgroup hands its registers to the consumers (setmaxnreg); the budget at
  // launch is 64K registers over kThreads, in multiples of 8.
  static constexpr int kProducerRegs = 32;
  static constexpr int kConsumerRegs =
      ((65536 - kProducerThreads * kProducerRegs) / kConsumerThreads) / 8 * 8;
};

template <int D, int kWG, int kN, int kStages>
__global__ void __launch_bounds__(WsTile<D, kWG, kN, kStages>::kThreads, 1)
    FlashPrefillWgmmaWsKernel(AttentionParams p) {
  using T = WsTile<D, kWG, kN, kStages>;
  static_assert(T::kProducerRegs >= 24 && T::kConsumerRegs >= 128, "register handover");
  static_assert(T::kProducerThreads >= kN, "a producer thread resolves each row of a tile");
  constexpr int kChunks = D / 8;
  WaitForPriorGrids();
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ uint64_t full[kStages], empty[kStages];
  const uint32_t raw = SmemAddress(smem_raw);
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem_raw + (((raw + 1023) & ~1023u) - raw));
  __nv_bfloat16* kv_s = q_s + T::kQElems;  // stage s: K at 2 * s tiles, V after it

  const int seq = p.first_seq + blockIdx.z, h = blockIdx.x;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * T::kRows;
  const int group = p.num_q_heads / p.num_kv_heads, g = h / group;
  const int q_begin = p.query_start[seq];
  const int q_len = p.query_start[seq + 1] - q_begin;
  if (m0 >= q_len) return;
  const int rows_here = min(T::kRows, q_len - m0);
  const int tid = threadIdx.x, lane = tid & 31, wg = tid / 128, warp = (tid / 32) & 3;
  const int first_pos = p.positions[q_begin + m0];
  const int last_pos = p.positions[q_begin + m0 + rows_here - 1];
  const int kv_hi = last_pos + 1;
  const int kv_lo = p.sliding_window > 0 ? max(0, first_pos - p.sliding_window + 1) : 0;
  const int tiles = kv_lo < kv_hi ? (kv_hi - kv_lo + kN - 1) / kN : 0;

  if (tid == 0) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
      MbarrierInit(&full[s], T::kProducerThreads);
      MbarrierInit(&empty[s], 4 * kWG);
    }
  }
  __syncthreads();  // the last block-wide barrier: past it the roles part

  if (tid >= T::kConsumerThreads) {  // producer warps
    SetMaxRegistersDec<T::kProducerRegs>();
    const int ptid = tid - T::kConsumerThreads;
    const int32_t* table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
    const PageMap pages(p.block_size);
    const auto panel_offset = [](int r, int c) { return SwizzledPanelOffset(kN, r, c); };
    for (int idx = ptid; idx < T::kRows * kChunks; idx += T::kProducerThreads) {
      const int r = idx / kChunks, c = idx % kChunks;
      const bool valid = r < rows_here;
      const __nv_bfloat16* src =
          valid ? p.q + (static_cast<int64_t>(q_begin + m0 + r) * p.num_q_heads + h) * D + c * 8
                : p.q;
      CpAsync16(q_s + SwizzledPanelOffset(T::kRows, r, c), src, valid ? 16 : 0);
    }
    // Tile t's rows are resolved into rows_s[t & 1] (ResolvedKvRows): looked up two tiles
    // ahead, published a tile ahead, made visible to the other producers by their barrier.
    __shared__ int64_t rows_s[2][kN];
    ResolvedKvRows<D, kN> resolver;
    if (tiles > 0) {
      resolver.Fetch(table, kv_lo, kv_hi, pages, ptid);
      resolver.Publish(rows_s[0], kv_hi, g, pages, p, ptid);
    }
    if (tiles > 1) resolver.Fetch(table, kv_lo + kN, kv_hi, pages, ptid);
    for (int j = 0; j < tiles; ++j) {
      const int stage = j % kStages;
      if (j >= kStages) MbarrierWait(&empty[stage], (j / kStages - 1) & 1);
      // rows_s[j & 1] is published; every producer is done copying from the other buffer.
      asm volatile("bar.sync 1, %0;\n" ::"n"(T::kProducerThreads) : "memory");
      __nv_bfloat16* k_tile = kv_s + 2 * stage * T::kKvElems;
      CopyResolvedKvTiles<D, kN, T::kProducerThreads>(k_tile, k_tile + T::kKvElems, panel_offset,
                                                      rows_s[j & 1], p, ptid);
      CpAsyncCommit();
      if (j > 0) {  // the previous tile (and Q with tile 0) has landed: publish it
        CpAsyncWait<1>();
        FenceProxyAsync();
        MbarrierArrive(&full[(j - 1) % kStages]);
      }
      if (j + 1 < tiles) resolver.Publish(rows_s[(j + 1) & 1], kv_hi, g, pages, p, ptid);
      if (j + 2 < tiles) resolver.Fetch(table, kv_lo + (j + 2) * kN, kv_hi, pages, ptid);
    }
    if (tiles > 0) {
      CpAsyncWait<0>();
      FenceProxyAsync();
      MbarrierArrive(&full[(tiles - 1) % kStages]);
    }
    return;
  }
  SetMaxRegistersInc<T::kConsumerRegs>();

  const int wg_row0 = wg * 64;
  const int wg_rows = min(64, rows_here - wg_row0);  // <= 0: an idle warpgroup
  const int wg_first = wg_rows > 0 ? p.positions[q_begin + m0 + wg_row0] : 0;
  const int wg_last = wg_rows > 0 ? p.positions[q_begin + m0 + wg_row0 + wg_rows - 1] : -1;
  const int wg_lo = p.sliding_window > 0 ? max(0, wg_first - p.sliding_window + 1) : 0;
  int pos[1][2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int row = wg_row0 + warp * 16 + (lane >> 2) + 8 * half;
    pos[0][half] = row < rows_here ? p.positions[q_begin + m0 + row] : -1;
  }
  const float scale_log2 = p.scale * 1.4426950408889634f;
  const uint64_t q_desc = SwizzledDesc(SmemAddress(q_s) + wg_row0 * 128, 16, 1024);
  const uint64_t k_desc = SwizzledDesc(SmemAddress(kv_s), 16, 1024);
  const uint64_t v_desc = SwizzledDesc(SmemAddress(kv_s + T::kKvElems), kN * 128, 1024);
  constexpr uint32_t kStageStep = 2 * T::kKvElems * sizeof(__nv_bfloat16) >> 4;

  float o[1][D / 8][4], s[1][kN / 8][4];
  float m[1][2] = {{-INFINITY, -INFINITY}}, l[1][2] = {{0.0f, 0.0f}};
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[0][j][0] = o[0][j][1] = o[0][j][2] = o[0][j][3] = 0.0f;
#pragma unroll
  for (int j = 0; j < kN / 8; ++j) s[0][j][0] = s[0][j][1] = s[0][j][2] = s[0][j][3] = 0.0f;
  const auto needs_mask = [&](int kv0) {
    return kv0 + kN > wg_first + 1 || kv0 + kN > kv_hi ||
           (p.sliding_window > 0 && kv0 <= wg_last - p.sliding_window);
  };

  const auto release = [&](int stage) {
    __syncwarp();
    if (lane == 0) MbarrierArrive(&empty[stage]);
  };
  const auto softmax = [&](int kv0, float(&alpha)[1][2]) {
    if (needs_mask(kv0)) {
      SoftmaxScores<true, kN, 1>(s, m, l, alpha, pos, kv0, kv_hi, p.sliding_window, scale_log2,
                                 lane);
    } else {
      SoftmaxScores<false, kN, 1>(s, m, l, alpha, pos, kv0, kv_hi, p.sliding_window, scale_log2,
                                  lane);
    }
  };
  for (int j = 0; j < tiles; ++j) {
    const int kv0 = kv_lo + j * kN, stage = j % kStages;
    MbarrierWait(&full[stage], (j / kStages) & 1);
    if (kv0 <= wg_last && kv0 + kN > wg_lo) {  // some key of the tile is visible here
      IssueScores<D, T::kRows, kN>(s[0], q_desc, k_desc + stage * kStageStep);
      WgmmaWait<0>();
      FenceRegisters(s[0]);
      float alpha[1][2];
      softmax(kv0, alpha);
      RescaleOutput<D, 1>(o, alpha);
      uint32_t a[kN / 16][4];
      PackProbabilities<kN>(s[0], a);
      IssueOutput<D, kN>(o[0], a, v_desc + stage * kStageStep);
      WgmmaWait<0>();
      FenceRegisters(o[0]);
    }
    release(stage);
  }

  if (wg_rows <= 0) return;
  const int row_a = wg_row0 + warp * 16 + (lane >> 2);
  StoreOutputRows<D>(o[0], RowSum(l[0][0]), RowSum(l[0][1]), row_a, rows_here, q_begin + m0, h,
                     lane, p);
}

// Three consumer warpgroups (192 query rows) against 64-key tiles in a ring of three stages,
// filled by a producer warpgroup: measured against the lockstep kernel (the copies issued by
// the computing threads, a block barrier every tile) with and without resolved rows, two
// consumer warpgroups, 128-key tiles and loops that overlap one tile's scores with the
// previous one's P V (see docs/performance_notes.md).
template <int D>
cudaError_t LaunchForHeadDim(const AttentionParams& p, int max_query_len, cudaStream_t stream) {
  static_assert(kWgmmaPrefillRows == 3 * 64, "three consumer warpgroups");
  using T = WsTile<D, 3, 64, 3>;
  const dim3 grid(p.num_q_heads, (max_query_len + T::kRows - 1) / T::kRows,
                  p.num_seqs - p.first_seq);
  const auto kernel = FlashPrefillWgmmaWsKernel<D, 3, 64, 3>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(T::kSmem));
  LaunchPdl(kernel, grid, T::kThreads, T::kSmem, stream, p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchFlashPrefillWgmma(const AttentionParams& p, int max_query_len,
                                    cudaStream_t stream) {
  if (p.num_tokens == 0 || p.num_seqs <= p.first_seq) return cudaSuccess;
  if (p.splits != 1) return cudaErrorInvalidValue;
  if (p.head_dim == 64) return LaunchForHeadDim<64>(p, max_query_len, stream);
  if (p.head_dim == 128) return LaunchForHeadDim<128>(p, max_query_len, stream);
  return cudaErrorInvalidValue;
}

}  // namespace tokenfab::cuda
