#include <algorithm>
#include <cfloat>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/flash_prefill.cuh"
#include "backend/cuda/mma_impl.cuh"

namespace tokenfab::cuda {
namespace {

// Tiles of kBM queries x kN keys per block. Each of the 4 warps owns kMT m16 tiles (16 * kMT
// query rows), so every K and V fragment a warp reads from shared memory feeds kMT tensor-core
// ops: with kMT = 2 the kernel stops being bound by shared-memory bandwidth. Measured on the
// H100 (Llama-3.1-8B shape, 4096-token prefill, whole forward): 128 x 64 at 32.5k tok/s against
// 29.9k for 64 x 64, 31.4k for 64 x 64 with registers for three blocks per SM, 31.9k for 128 x 32.
// Short chunks (a few query tiles, often after a long cached prefix) take kMT = 1 instead:
// 64-row tiles waste fewer rows on a chunk's last tile and, with half the accumulators, more
// blocks fit an SM to hide the latency of the paged K/V loads (FlashPrefillShape).
constexpr int kThreads = 128;
constexpr int kN = 64;  // keys per tile
template <int kMT>
constexpr int kRowsPerTile = kThreads / 32 * 16 * kMT;  // query rows per block
// 128-row tiles take up to 255 registers a thread (two blocks an SM); 64-row tiles are held to
// 170 for this many blocks an SM (at 128 registers, for four, D = 128 spilled).
constexpr int kShortTileBlocksPerSm = 3;

// Tiles are [rows][D] bf16 with 16-byte chunks XOR-swizzled by row, so that the 8 rows one
// ldmatrix reads sit in 8 different bank groups.
template <int D>
__device__ __forceinline__ int SwizzledOffset(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

// Where key position `kpos` of the sequence sits in the cache: its page through the block
// table, then its row in the page. Page sizes are powers of two in practice (the shift is
// cheap); any other size takes the division.
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

// One K or V tile of kN keys into shared memory. Each thread copies the same 16-byte chunk of
// kN / (kThreads / kChunks) rows, so the loop unrolls and the chunk offset is computed once.
template <int D>
__device__ __forceinline__ void LoadKvTile(__nv_bfloat16* tile, const __nv_bfloat16* cache,
                                           const int32_t* table, int kv0, int kv_hi, int g,
                                           const PageMap& pages, const AttentionParams& p) {
  constexpr int kChunks = D / 8;
  constexpr int kRowsPerPass = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0 && kN % kRowsPerPass == 0, "tile copy shape");
  const int64_t head_stride = static_cast<int64_t>(p.num_kv_heads) * D;
  const int c = threadIdx.x % kChunks, r0 = threadIdx.x / kChunks;
  const __nv_bfloat16* head = cache + static_cast<int64_t>(g) * D + c * 8;
#pragma unroll
  for (int i = 0; i < kN / kRowsPerPass; ++i) {
    const int r = r0 + i * kRowsPerPass, kpos = kv0 + r;
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
    CpAsync16(tile + SwizzledOffset<D>(r, c), src, bytes);
  }
}

// 2^x on the SFU, subnormal results flushed to 0 (exp2f also rescales subnormal inputs, which
// costs instructions in the softmax's hot loop for nothing: p below 2^-126 adds nothing).
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The online softmax of one key tile for a warp's kMT m16 tiles. s holds the raw scores Q.K of
// this thread's fragment (rows lane/4 and lane/4 + 8 of each m16 tile: half 0 and 1) and becomes
// p = 2^(s * scale_log2 - m) in place; m (the scaled running max, -inf while no key was visible),
// l (the running sum) and o (the unnormalised output) move to the new max. The scale folds into
// the exponent's FFMA. kMask applies the causal, window and length mask first.
template <bool kMask, int D, int kMT>
__device__ __forceinline__ void OnlineSoftmax(float (&s)[kMT][kN / 8][4], float (&o)[kMT][D / 8][4],
                                              float (&m)[kMT][2], float (&l)[kMT][2],
                                              const int (&pos)[kMT][2], int kv0, int kv_hi,
                                              int window, float scale_log2, int lane) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    if constexpr (kMask) {
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = kv0 + j * 8 + (lane & 3) * 2 + (e & 1), at = pos[mt][e >> 1];
          const bool ok = key < kv_hi && key <= at && (window == 0 || key > at - window);
          if (!ok) s[mt][j][e] = -INFINITY;
        }
      }
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < kN / 8; ++j)
        mx = fmaxf(mx, fmaxf(s[mt][j][2 * half], s[mt][j][2 * half + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
      const float next = fmaxf(m[mt][half], mx * scale_log2);
      // A row that has seen no key yet keeps -inf; subtracting 0 keeps its p (of -inf) at 0.
      const float sub = kMask && next == -INFINITY ? 0.0f : next;
      const float alpha = Exp2(m[mt][half] - sub);  // 0 the first time: o and l are 0
      m[mt][half] = next;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
        s[mt][j][2 * half] = Exp2(fmaf(s[mt][j][2 * half], scale_log2, -sub));
        s[mt][j][2 * half + 1] = Exp2(fmaf(s[mt][j][2 * half + 1], scale_log2, -sub));
        sum += s[mt][j][2 * half] + s[mt][j][2 * half + 1];
      }
      l[mt][half] = l[mt][half] * alpha + sum;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[mt][j][2 * half] *= alpha;
        o[mt][j][2 * half + 1] *= alpha;
      }
    }
  }
}

// kSplit: the grid splits each query tile's keys (p.splits > 1) and the block writes a partial
// softmax. A separate instantiation keeps the split arithmetic and epilogue out of the unsplit
// kernel (long prompts).
template <int D, bool kSplit, int kMT>
__global__ void __launch_bounds__(kThreads, kMT == 1 ? kShortTileBlocksPerSm : 1)
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
    LoadKvTile<D>(k_s, p.k_cache, table, kv_lo, kv_hi, g, pages, p);
    CpAsyncCommit();
  }
  for (int kv0 = kv_lo; kv0 < kv_hi; kv0 += kN) {
    CpAsyncWait<0>();  // K(i) (and, the first time, Q)
    __syncthreads();
    LoadKvTile<D>(v_s, p.v_cache, table, kv0, kv_hi, g, pages, p);
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
      LoadKvTile<D>(k_s, p.k_cache, table, kv0 + kN, kv_hi, g, pages, p);
      CpAsyncCommit();
    }
    // Only tiles that reach past the block's first query, past the split's end or into its
    // window's edge need the mask; the rest (most of a long prompt) skip its arithmetic.
    const bool needs_mask = kv0 + kN > first_pos || kv0 + kN > kv_hi ||
                            (p.sliding_window > 0 && kv0 <= last_pos - p.sliding_window);
    if (needs_mask) {
      OnlineSoftmax<true, D, kMT>(s, o, m, l, pos, kv0, kv_hi, p.sliding_window, scale_log2, lane);
    } else {
      OnlineSoftmax<false, D, kMT>(s, o, m, l, pos, kv0, kv_hi, p.sliding_window, scale_log2, lane);
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
    float la = l[mt][0], lb = l[mt][1];
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      la += __shfl_xor_sync(kFullMask, la, off);
      lb += __shfl_xor_sync(kFullMask, lb, off);
    }
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
      continue;
    }
    const float inv_a = la > 0.0f ? 1.0f / la : 0.0f, inv_b = lb > 0.0f ? 1.0f / lb : 0.0f;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const int col = j * 8 + (lane & 3) * 2;
      if (row_a < rows_here) {
        __nv_bfloat16* dst =
            p.out + (static_cast<int64_t>(q_begin + m0 + row_a) * p.num_q_heads + h) * D + col;
        *reinterpret_cast<__nv_bfloat162*>(dst) =
            __floats2bfloat162_rn(o[mt][j][0] * inv_a, o[mt][j][1] * inv_a);
      }
      if (row_b < rows_here) {
        __nv_bfloat16* dst =
            p.out + (static_cast<int64_t>(q_begin + m0 + row_b) * p.num_q_heads + h) * D + col;
        *reinterpret_cast<__nv_bfloat162*>(dst) =
            __floats2bfloat162_rn(o[mt][j][2] * inv_b, o[mt][j][3] * inv_b);
      }
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
  if (tile_rows == kRowsPerTile<1>) return Launch<D, 1>(p, max_query_len, stream);
  if (tile_rows == kRowsPerTile<2>) return Launch<D, 2>(p, max_query_len, stream);
  return cudaErrorInvalidValue;
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
  // Long prompts: 128-row tiles, which alone fill the GPU.
  if (blocks(kRowsPerTile<2>) >= num_sms) return shape;
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
  if (p.head_dim == 64) return LaunchForHeadDim<64>(p, tile_rows, max_query_len, stream);
  if (p.head_dim == 128) return LaunchForHeadDim<128>(p, tile_rows, max_query_len, stream);
  return cudaErrorInvalidValue;
}

}  // namespace tokenfab::cuda
