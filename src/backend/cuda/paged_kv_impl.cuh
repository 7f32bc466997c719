// Device helpers for reading the paged KV cache: where a key position sits (its page through
// the sequence's block table, then its row in the page) and the tensor-core kernels' copy of a
// tile of keys into shared memory.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/mma_impl.cuh"

namespace tokenfab::cuda {

// Page sizes are powers of two in practice (a shift is cheap); any other size takes the
// division, which in a kernel's inner loop costs tens of instructions.
struct PageMap {
  int size, shift;  // shift < 0: not a power of two
  __device__ explicit PageMap(int block_size) : size(block_size), shift(-1) {
    if ((block_size & (block_size - 1)) != 0) return;
    shift = 0;
    while ((1 << shift) < block_size) ++shift;
  }
  __device__ __forceinline__ int Page(int kpos) const {
    return shift >= 0 ? kpos >> shift : kpos / size;
  }
  __device__ __forceinline__ int Row(int kpos, int page) const { return kpos - page * size; }
};

// Where the rows of a tile of keys [kv0, kv0 + kRows) of KV head g come from, for the rows
// this thread copies (chunk c of rows r0, r0 + kRowsPerPass, ...): element offsets into the
// cache, the same for K and V, or -1 for keys at or past kv_hi and keys whose page is unmapped
// (copied as zeros: the mask hides them, and zeros keep NaNs out of P V). Every row's page
// lookup is issued before any is used, so a tile costs one memory latency, not one per row.
template <int D, int kRows, int kThreads>
struct KvRowSources {
  static constexpr int kChunks = D / 8;
  static constexpr int kRowsPerPass = kThreads / kChunks;
  static constexpr int kPasses = (kRows + kRowsPerPass - 1) / kRowsPerPass;
  static_assert(kThreads % kChunks == 0, "tile copy shape");
  int64_t offset[kPasses];

  // The block-table entries of this thread's rows (loads only: a caller may issue them a
  // tile ahead and resolve them when it copies).
  __device__ static __forceinline__ void Lookup(int32_t (&block)[kPasses], const int32_t* table,
                                                int kv0, int kv_hi, const PageMap& pages, int tid) {
    const int r0 = tid / kChunks;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      block[i] = table[pages.Page(min(kv0 + r0 + i * kRowsPerPass, kv_hi - 1))];
    }
  }

  __device__ __forceinline__ KvRowSources(const int32_t (&block)[kPasses], int kv0, int kv_hi,
                                          int g, const PageMap& pages, const AttentionParams& p,
                                          int tid) {
    const int c = tid % kChunks, r0 = tid / kChunks;
    const int64_t head_stride = static_cast<int64_t>(p.num_kv_heads) * D;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      const int kpos = kv0 + r0 + i * kRowsPerPass;
      const int page = pages.Page(kpos);
      const bool valid = kpos < kv_hi && block[i] >= 0 && block[i] < p.num_blocks;
      offset[i] = valid ? (static_cast<int64_t>(block[i]) * p.block_size + pages.Row(kpos, page)) *
                                  head_stride +
                              g * D + c * 8
                        : -1;
    }
  }

  // The rows into `tile` from `cache` with cp.async, 16 bytes a copy: chunk c of key row r goes
  // to tile + tile_offset(r, c).
  template <typename Offset>
  __device__ __forceinline__ void Copy(__nv_bfloat16* tile, Offset tile_offset,
                                       const __nv_bfloat16* cache, int tid) const {
    const int c = tid % kChunks, r0 = tid / kChunks;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      const int r = r0 + i * kRowsPerPass;
      if (kRows % kRowsPerPass != 0 && r >= kRows) break;
      const bool valid = offset[i] >= 0;
      CpAsync16(tile + tile_offset(r, c), valid ? cache + offset[i] : cache, valid ? 16 : 0);
    }
  }
};

// Keys [kv0, kv0 + kRows) of KV head g into a shared-memory tile (see KvRowSources).
template <int D, int kRows, int kThreads, typename Offset>
__device__ __forceinline__ void LoadKvTile(__nv_bfloat16* tile, Offset offset,
                                           const __nv_bfloat16* cache, const int32_t* table,
                                           int kv0, int kv_hi, int g, const PageMap& pages,
                                           const AttentionParams& p, int tid) {
  using Rows = KvRowSources<D, kRows, kThreads>;
  int32_t block[Rows::kPasses];
  Rows::Lookup(block, table, kv0, kv_hi, pages, tid);
  Rows(block, kv0, kv_hi, g, pages, p, tid).Copy(tile, offset, cache, tid);
}

// The same keys' K and V rows into their two tiles, from one set of page lookups.
template <int D, int kRows, int kThreads, typename Offset>
__device__ __forceinline__ void LoadKvTiles(__nv_bfloat16* k_tile, __nv_bfloat16* v_tile,
                                            Offset offset, const int32_t* table, int kv0, int kv_hi,
                                            int g, const PageMap& pages, const AttentionParams& p,
                                            int tid) {
  using Rows = KvRowSources<D, kRows, kThreads>;
  int32_t block[Rows::kPasses];
  Rows::Lookup(block, table, kv0, kv_hi, pages, tid);
  const Rows rows(block, kv0, kv_hi, g, pages, p, tid);
  rows.Copy(k_tile, offset, p.k_cache, tid);
  rows.Copy(v_tile, offset, p.v_cache, tid);
}
// The same from block-table entries looked up earlier (KvRowSources::Lookup).
template <int D, int kRows, int kThreads, typename Offset>
__device__ __forceinline__ void LoadKvTiles(
    __nv_bfloat16* k_tile, __nv_bfloat16* v_tile, Offset offset,
    const int32_t (&block)[KvRowSources<D, kRows, kThreads>::kPasses], int kv0, int kv_hi, int g,
    const PageMap& pages, const AttentionParams& p, int tid) {
  const KvRowSources<D, kRows, kThreads> rows(block, kv0, kv_hi, g, pages, p, tid);
  rows.Copy(k_tile, offset, p.k_cache, tid);
  rows.Copy(v_tile, offset, p.v_cache, tid);
}

}  // namespace tokenfab::cuda
