// Launcher of the tensor-core attention kernel for prefill chunks: FlashAttention-2 style tiles
// of 128 queries x 64 keys per block (4 warps of 32 query rows), mma.sync m16n8k16 in bf16 with
// f32 accumulation and an online softmax, K/V tiles gathered from the paged cache through the
// block table with cp.async. head_dim 64 or 128; causal by position, optional sliding window.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"

namespace tokenfab::cuda {

// True if the kernel supports this head_dim / alignment.
bool FlashPrefillSupports(const AttentionParams& p);

// grid (ceil(max_query_len / 128), Hq, num_seqs); `max_query_len` is the longest new chunk.
cudaError_t LaunchFlashPrefill(const AttentionParams& p, int max_query_len, cudaStream_t stream);

}  // namespace tokenfab::cuda
