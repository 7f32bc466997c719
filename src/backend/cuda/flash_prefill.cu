#include <algorithm>
#include <cfloat>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/flash_prefill.cuh"
#include "backend/cuda/flash_prefill_wgmma.cuh"
#include "backend/cuda/flash_softmax_impl.cuh"
#include "backend/cuda/mma_impl.cuh"
#include "backend/cuda/paged_kv_impl.cuh"

namespace tokenfab::cuda {
namespace {

// Tiles of kBM queries x kN keys per block. Each of the 4 warps owns kMT m16 tiles (16 * kMT
// query rows), so every K and V fragment a warp reads from shared memory feeds kMT tensor-core
// ops. Long chunks, for which kMT = 2 was the fastest shape here (H100, 4096-token prefill:
// 128 x 64 tiles at 32.5k tok/s against 29.9k for 64 x 64), now take the wgmma kernel
// (flash_prefill_wgmma.cuh); this one runs the short chunks (a few query tiles, often after a
// long cached prefix) with kMT = 1: 64-row tiles waste fewer rows on a chunk's last tile and,
// with half the accumulators, more blocks fit an SM to hide the latency of the paged K/V loads
// (FlashPrefillShape).
constexpr int kThreads = 128;
constexpr int kN = 64;  // keys per tile
template <int kMT>
constexpr int kRowsPerTile = kThreads / 32 * 16 * kMT;  // query rows per block
// 64-row tiles are held to 170 registers a thread for this many blocks an SM (at 128 registers,
// for four, D = 128 spilled).
constexpr int kShortTileBlocksPerSm = 3;

// Tiles are [rows][D] bf16 with 16-byte chunks XOR-swizzled by row, so that the 8 rows one
// ldmatrix reads sit in 8 different bank groups.
template <int D>
__device__ __forceinline__ int SwizzledOffset(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

// kSplit: the grid splits each query tile's keys (p.splits > 1) and the block writes a partial
// softmax. A separate instantiation keeps the split arithmetic and epilogue out of the unsplit
// kernel (long prompts).
template <int D, bool kSplit, int kMT>
__global__ void __launch_bounds__(kThreads, kShortTileBlocksPerSm)
    FlashPrefillKernel(AttentionParams p) {
  constexpr int kBM = kRowsPerTile<kMT>;
  WaitForPriorGrids();
  constexpr int kChunks = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* k_s = q_s + kBM * D;
  __nv_bfloat16* v_s = k_s + kN * D;

  // Causal tiles further down the prompt see more keys: the grid runs them first, so the
  // short ones fill the tail of the last wave instead of the long ones dragging it out.
  // blockIdx.x is (query tile, split of its keys), splits innermost.
  const int splits = kSplit ? p.splits : 1;
  const int split = kSplit ? blockIdx.x % splits : 0;
  const int seq = p.first_seq + blockIdx.z, h = blockIdx.y,
            m0 = (gridDim.x / splits - 1 - blockIdx.x / splits) * kBM;
  const int group = p.num_q_heads / p.num_kv_heads, g = h / group;
  const int q_begin = p.query_start[seq];
  const int q_len = p.query_start[seq + 1] - q_begin;
  if (m0 >= q_len) return;
  const int rows_here = min(kBM, q_len - m0);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t* table = p.block_tables + static_cast<int64_t>(seq) * p.max_blocks_per_seq;
  const PageMap pages(p.block_size);
  const auto tile_offset = [](int r, int c) { return SwizzledOffset<D>(r, c); };

  const int first_pos = p.positions[q_begin + m0];
  const int last_pos = p.positions[q_begin + m0 + rows_here - 1];
  const int tile_hi = last_pos + 1;
  const int tile_lo = p.sliding_window > 0 ? max(0, first_pos - p.sliding_window + 1) : 0;
  // This split's share of the tile's keys, in whole key tiles (may be empty).
  const int key_tiles = (tile_hi - tile_lo + kN - 1) / kN;
  const int tiles_per_split = kSplit ? (key_tiles + splits - 1) / splits : key_tiles;
  const int kv_lo = kSplit ? tile_lo + split * tiles_per_split * kN : tile_lo;
  const int kv_hi = kSplit ? min(tile_hi, kv_lo + tiles_per_split * kN) : tile_hi;

  // Q tile; its fragments are read from shared memory at every key tile (registers go to the
  // kMT accumulators instead).
  for (int idx = tid; idx < kBM * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const bool valid = r < rows_here;
    const __nv_bfloat16* src =
        valid ? p.q + (static_cast<int64_t>(q_begin + m0 + r) * p.num_q_heads + h) * D + c * 8
              : p.q;
    CpAsync16(q_s + SwizzledOffset<D>(r, c), src, valid ? 16 : 0);
  }
  CpAsyncCommit();

  // This thread's rows: in each of its warp's m16 tiles, fragment rows lane/4 and lane/4 + 8
  // (half 0 and 1 below).
  const int warp_row0 = warp * 16 * kMT;
  int pos[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = warp_row0 + mt * 16 + (lane >> 2) + 8 * half;
      pos[mt][half] = row < rows_here ? p.positions[q_begin + m0 + row] : -1;
    }
  }
  const float scale_log2 = p.scale * 1.4426950408889634f;  // softmax in base 2

  float o[kMT][D / 8][4];
  float m[kMT][2], l[kMT][2];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.0f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
  }

  // Pipeline: V(i) loads while S = Q K(i)^T and the softmax run; K(i+1) loads during P V(i).
  if (kv_lo < kv_hi) {
    LoadKvTile<D, kN, kThreads>(k_s, tile_offset, p.k_cache, table, kv_lo, kv_hi, g, pages, p, tid);
    CpAsyncCommit();
  }
  for (int kv0 = kv_lo; kv0 < kv_hi; kv0 += kN) {
    CpAsyncWait<0>();  // K(i) (and, the first time, Q)
    __syncthreads();
    LoadKvTile<D, kN, kThreads>(v_s, tile_offset, p.v_cache, table, kv0, kv_hi, g, pages, p, tid);
    CpAsyncCommit();

    float s[kMT][kN / 8][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int mat = lane >> 3;
      uint32_t qf[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        const int row = warp_row0 + mt * 16 + (lane & 7) + 8 * (mat & 1);
        LdMatrixX4(qf[mt], SmemAddress(q_s + SwizzledOffset<D>(row, 2 * kk + (mat >> 1))));
      }
#pragma unroll
      for (int nn = 0; nn < kN / 16; ++nn) {
        const int row = nn * 16 + (lane & 7) + 8 * (mat >> 1);
        uint32_t b[4];
        LdMatrixX4(b, SmemAddress(k_s + SwizzledOffset<D>(row, 2 * kk + (mat & 1))));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          Mma(s[mt][2 * nn], qf[mt], b[0], b[1]);
          Mma(s[mt][2 * nn + 1], qf[mt], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with k_s
    const bool more = kv0 + kN < kv_hi;
    if (more) {
      LoadKvTile<D, kN, kThreads>(k_s, tile_offset, p.k_cache, table, kv0 + kN, kv_hi, g, pages, p,
                                  tid);
      CpAsyncCommit();
    }
    // Only tiles that reach past the block's first query, past the split's end or into its
    // window's edge need the mask; the rest (most of a long prompt) skip its arithmetic.
    const bool needs_mask = kv0 + kN > first_pos || kv0 + kN > kv_hi ||
                            (p.sliding_window > 0 && kv0 <= last_pos - p.sliding_window);
    if (needs_mask) {
      OnlineSoftmax<true, kN, D, kMT>(s, o, m, l, pos, kv0, kv_hi, p.sliding_window, scale_log2,
                                      lane);
    } else {
      OnlineSoftmax<false, kN, D, kMT>(s, o, m, l, pos, kv0, kv_hi, p.sliding_window, scale_log2,
                                       lane);
    }
    if (more) {
      CpAsyncWait<1>();  // V(i); K(i+1) may still be in flight
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();
    // O += P V, P taken from the score accumulators as bf16 A fragments.
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
      uint32_t a[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        a[mt][0] = PackBf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        a[mt][1] = PackBf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        a[mt][2] = PackBf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        a[mt][3] = PackBf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int nn = 0; nn < D / 16; ++nn) {
        const int mat = lane >> 3;
        const int row = kk * 16 + (lane & 7) + 8 * (mat & 1);
        uint32_t b[4];
        LdMatrixX4Trans(b, SmemAddress(v_s + SwizzledOffset<D>(row, 2 * nn + (mat >> 1))));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          Mma(o[mt][2 * nn], a[mt], b[0], b[1]);
          Mma(o[mt][2 * nn + 1], a[mt], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // the next tile's V overwrites v_s
  }
  CpAsyncWait<0>();  // Q, when no key was visible

#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    const float la = RowSum(l[mt][0]), lb = RowSum(l[mt][1]);
    const int row_a = warp_row0 + mt * 16 + (lane >> 2), row_b = row_a + 8;
    if constexpr (kSplit) {
      // The unnormalised accumulator and the row's max (natural log units, as the merge
      // kernel takes them) and sum; an empty or fully masked split leaves sum 0.
      constexpr float kLn2 = 0.6931471805599453f;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = half == 0 ? row_a : row_b;
        if (row >= rows_here) continue;
        const int64_t slot =
            (static_cast<int64_t>(q_begin + m0 + row) * p.num_q_heads + h) * splits + split;
        float* acc = p.partial_acc + slot * D;
#pragma unroll
        for (int j = 0; j < D / 8; ++j) {
          const int col = j * 8 + (lane & 3) * 2;
          *reinterpret_cast<float2*>(acc + col) =
              make_float2(o[mt][j][2 * half], o[mt][j][2 * half + 1]);
        }
        if ((lane & 3) == 0) {
          p.partial_ml[slot * 2] = m[mt][half] * kLn2;  // -inf: nothing visible
          p.partial_ml[slot * 2 + 1] = half == 0 ? la : lb;
        }
      }
    } else {
      StoreOutputRows<D>(o[mt], la, lb, row_a, rows_here, q_begin + m0, h, lane, p);
    }
  }
}

template <int D, int kMT>
cudaError_t Launch(const AttentionParams& p, int max_query_len, cudaStream_t stream) {
  constexpr int kBM = kRowsPerTile<kMT>;
  const size_t smem = sizeof(__nv_bfloat16) * (kBM + 2 * kN) * D;
  const dim3 grid((max_query_len + kBM - 1) / kBM * p.splits, p.num_q_heads,
                  p.num_seqs - p.first_seq);
  const auto kernel =
      p.splits > 1 ? FlashPrefillKernel<D, true, kMT> : FlashPrefillKernel<D, false, kMT>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  LaunchPdl(kernel, grid, kThreads, smem, stream, p);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess || p.splits == 1) return err;
  return LaunchMergeSplits(p, stream);
}

template <int D>
cudaError_t LaunchForHeadDim(const AttentionParams& p, int tile_rows, int max_query_len,
                             cudaStream_t stream) {
  if (tile_rows != kRowsPerTile<1>) return cudaErrorInvalidValue;
  return Launch<D, 1>(p, max_query_len, stream);
}

}  // namespace

bool FlashPrefillSupports(const AttentionParams& p) {
  return (p.head_dim == 64 || p.head_dim == 128) && Aligned16(p.q) && Aligned16(p.k_cache) &&
         Aligned16(p.v_cache) && Aligned16(p.out);
}

FlashPrefillShape FlashPrefillShapeFor(int max_query_len, int num_q_heads, int num_seqs,
                                       int max_keys, int num_sms) {
  FlashPrefillShape shape;
  auto blocks = [&](int rows) {
    return (max_query_len + rows - 1) / rows * num_q_heads * num_seqs;
  };
  // Long prompts: the wgmma kernel's tiles, which alone fill the GPU.
  if (blocks(kWgmmaPrefillRows) >= num_sms) return shape;
  // A short chunk: 64-row tiles, and each tile's keys split until the grid fills the SMs in
  // one wave (rounding up would start a second wave for a few blocks), keeping at least
  // kMinTilesPerSplit key tiles per split so the merge stays cheap.
  constexpr int kMinTilesPerSplit = 4;
  shape.tile_rows = kRowsPerTile<1>;
  const int tiles = blocks(kRowsPerTile<1>);
  const int by_occupancy = kShortTileBlocksPerSm * num_sms / tiles;
  const int by_length = (max_keys + kN - 1) / kN / kMinTilesPerSplit;
  shape.splits = std::max(1, std::min({by_occupancy, by_length, 16}));
  return shape;
}

cudaError_t LaunchFlashPrefill(const AttentionParams& p, int tile_rows, int max_query_len,
                               cudaStream_t stream) {
  if (p.num_tokens == 0 || p.num_seqs <= p.first_seq) return cudaSuccess;
  if (tile_rows == kWgmmaPrefillRows) return LaunchFlashPrefillWgmma(p, max_query_len, stream);
  if (p.head_dim == 64) return LaunchForHeadDim<64>(p, tile_rows, max_query_len, stream);
  if (p.head_dim == 128) return LaunchForHeadDim<128>(p, tile_rows, max_query_len, stream);
  return cudaErrorInvalidValue;
}

}  // namespace tokenfab::cuda
