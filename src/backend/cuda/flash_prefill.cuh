// Launcher of the tensor-core attention kernel for prefill chunks: FlashAttention-2 style tiles
// of 128 (or 64) queries x 64 keys per block (4 warps of 32 or 16 query rows), mma.sync
// m16n8k16 in bf16 with f32 accumulation and an online softmax, K/V tiles gathered from the
// paged cache through the block table with cp.async. head_dim 64 or 128; causal by position, optional sliding window.
// A tile's keys may be split across blocks (flash-decoding style) when there are few tiles.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"

namespace tokenfab::cuda {

// True if the kernel supports this head_dim / alignment.
bool FlashPrefillSupports(const AttentionParams& p);

// How a batch's chunks are tiled: 128 query rows per tile when those tiles alone fill the
// GPU (long prompts); otherwise (a short chunk, often after a long cached prefix, whose few
// tiles would each walk the whole prefix on one SM) 64-row tiles, with each tile's keys split
// across `splits` blocks. `max_keys` is the longest window.
struct FlashPrefillShape {
  int tile_rows = 128;
  int splits = 1;
};
FlashPrefillShape FlashPrefillShapeFor(int max_query_len, int num_q_heads, int num_seqs,
                                       int max_keys, int num_sms);

// grid (ceil(max_query_len / tile_rows) * p.splits, Hq, num_seqs - p.first_seq): the
// sequences from p.first_seq on; `max_query_len` is the longest new chunk, `tile_rows` and
// p.splits come from FlashPrefillShapeFor. With p.splits > 1 each block writes its split's
// partial softmax into p.partial_acc / p.partial_ml and a second kernel (LaunchMergeSplits)
// combines them.
cudaError_t LaunchFlashPrefill(const AttentionParams& p, int tile_rows, int max_query_len,
                               cudaStream_t stream);

}  // namespace tokenfab::cuda
