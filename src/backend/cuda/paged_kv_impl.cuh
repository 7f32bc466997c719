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

// Keys [kv0, kv0 + kRows) of KV head g into a shared-memory tile with cp.async, 16 bytes a
// copy: chunk c of key row r goes to tile + offset(r, c). Keys at or past kv_hi, and keys whose
// page is unmapped, are zero-filled (the mask hides them; zeros keep NaNs out of P V). Each of
// the kThreads threads copies the same chunk of every (kThreads / chunks)-th row, so the loop
// unrolls and the chunk's offset is computed once.
template <int D, int kRows, int kThreads, typename Offset>
__device__ __forceinline__ void LoadKvTile(__nv_bfloat16* tile, Offset offset,
                                           const __nv_bfloat16* cache, const int32_t* table,
                                           int kv0, int kv_hi, int g, const PageMap& pages,
                                           const AttentionParams& p, int tid) {
  constexpr int kChunks = D / 8;
  constexpr int kRowsPerPass = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0, "tile copy shape");
  const int64_t head_stride = static_cast<int64_t>(p.num_kv_heads) * D;
  const int c = tid % kChunks, r0 = tid / kChunks;
  const __nv_bfloat16* head = cache + static_cast<int64_t>(g) * D + c * 8;
#pragma unroll
  for (int i = 0; i < (kRows + kRowsPerPass - 1) / kRowsPerPass; ++i) {
    const int r = r0 + i * kRowsPerPass, kpos = kv0 + r;
    if (kRows % kRowsPerPass != 0 && r >= kRows) break;
    const __nv_bfloat16* src = cache;
    int bytes = 0;
    if (kpos < kv_hi) {
      const int page = pages.Page(kpos);
      const int32_t block = table[page];
      if (block >= 0 && block < p.num_blocks) {
        src = head +
              (static_cast<int64_t>(block) * p.block_size + pages.Row(kpos, page)) * head_stride;
        bytes = 16;
      }
    }
    CpAsync16(tile + offset(r, c), src, bytes);
  }
}

// A tile's rows resolved once: thread r < kRows of the block looks up the page of key
// kv0 + r (Fetch, a load a caller can issue well before it needs the answer) and writes where
// its K/V row starts, or -1 for a zero-filled row, to shared memory (Publish); after a barrier
// every copy of a 16-byte chunk is then a shared-memory read, an add and a cp.async, where
// LoadKvTile computes a row's page, bounds and 64-bit address for each chunk.
template <int D, int kRows>
struct ResolvedKvRows {
  int fetched_kpos = 0;
  int32_t fetched_block = -1;

  __device__ __forceinline__ void Fetch(const int32_t* table, int kv0, int kv_hi,
                                        const PageMap& pages, int tid) {
    if (tid >= kRows) return;
    fetched_kpos = kv0 + tid;
    fetched_block = table[pages.Page(min(fetched_kpos, kv_hi - 1))];
  }
  __device__ __forceinline__ void Publish(int64_t* out, int kv_hi, int g, const PageMap& pages,
                                          const AttentionParams& p, int tid) const {
    if (tid >= kRows) return;
    const int kpos = fetched_kpos, block = fetched_block;
    const bool valid = kpos < kv_hi && block >= 0 && block < p.num_blocks;
    out[tid] =
        valid ? (static_cast<int64_t>(block) * p.block_size + pages.Row(kpos, pages.Page(kpos))) *
                        p.num_kv_heads * D +
                    static_cast<int64_t>(g) * D
              : -1;
  }
};

// K and V of a tile whose rows were resolved into `rows` (ResolvedKvRows), kThreads threads
// copying 16-byte chunks: chunk c of row r to tile + offset(r, c) in both tiles.
template <int D, int kRows, int kThreads, typename Offset>
__device__ __forceinline__ void CopyResolvedKvTiles(__nv_bfloat16* k_tile, __nv_bfloat16* v_tile,
                                                    Offset offset, const int64_t* rows,
                                                    const AttentionParams& p, int tid) {
  constexpr int kChunks = D / 8;
  constexpr int kRowsPerPass = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0, "tile copy shape");
  const int c = tid % kChunks, r0 = tid / kChunks;
#pragma unroll
  for (int i = 0; i < (kRows + kRowsPerPass - 1) / kRowsPerPass; ++i) {
    const int r = r0 + i * kRowsPerPass;
    if (kRows % kRowsPerPass != 0 && r >= kRows) break;
    const int64_t row = rows[r];
    const bool valid = row >= 0;
    const int64_t at = valid ? row + c * 8 : 0;
    const int at_tile = offset(r, c);
    CpAsync16(k_tile + at_tile, p.k_cache + at, valid ? 16 : 0);
    CpAsync16(v_tile + at_tile, p.v_cache + at, valid ? 16 : 0);
  }
}

}  // namespace tokenfab::cuda
