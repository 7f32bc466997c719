// Launcher of the tensor-core attention kernels for prefill chunks. Long chunks take the wgmma
// kernel (flash_prefill_wgmma.cuh); short ones the FlashAttention-2 style kernel here: tiles of
// 64 queries x 64 keys per block (4 warps of 16 query rows), mma.sync m16n8k16 in bf16 with f32
// accumulation and an online softmax, K/V tiles gathered from the paged cache through the block
// table with cp.async, a tile's keys split across blocks (flash-decoding style) when there are
// few tiles. head_dim 64 or 128; causal by position, optional sliding window.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/flash_prefill_wgmma.cuh"

namespace tokenfab::cuda {

// True if the kernel supports this head_dim / alignment.
bool FlashPrefillSupports(const AttentionParams& p);

// How a batch's chunks are tiled: the wgmma kernel's kWgmmaPrefillRows query rows per tile when
// those tiles alone fill the GPU (long prompts); otherwise (a short chunk, often after a long
// cached prefix, whose few tiles would each walk the whole prefix on one SM) 64-row tiles, with
// each tile's keys split across `splits` blocks. `max_keys` is the longest window.
struct FlashPrefillShape {
  int tile_rows = kWgmmaPrefillRows;
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
