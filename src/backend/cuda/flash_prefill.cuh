// Launcher of the tensor-core attention kernel for prefill chunks: FlashAttention-2 style tiles
// of 128 queries x 64 keys per block (4 warps of 32 query rows), mma.sync m16n8k16 in bf16 with
// f32 accumulation and an online softmax, K/V tiles gathered from the paged cache through the
// block table with cp.async. head_dim 64 or 128; causal by position, optional sliding window.
// A tile's keys may be split across blocks (flash-decoding style) when there are few tiles.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"

namespace tokenfab::cuda {

// True if the kernel supports this head_dim / alignment.
bool FlashPrefillSupports(const AttentionParams& p);

// How many splits of each query tile's keys fill the GPU: 1 when the query tiles alone do (long
// prompts); more for a short chunk after a long cached prefix, whose few query tiles would
// otherwise each walk the whole prefix on one SM. `max_keys` is the longest window.
int FlashPrefillSplits(int max_query_len, int num_q_heads, int num_seqs, int max_keys,
                       int num_sms);

// grid (ceil(max_query_len / 128) * p.splits, Hq, num_seqs - p.first_seq): the sequences from
// p.first_seq on; `max_query_len` is the longest new chunk. With p.splits > 1 each block writes its split's partial softmax into p.partial_acc /
// p.partial_ml and a second kernel (LaunchMergeSplits) combines them.
cudaError_t LaunchFlashPrefill(const AttentionParams& p, int max_query_len, cudaStream_t stream);

}  // namespace tokenfab::cuda
