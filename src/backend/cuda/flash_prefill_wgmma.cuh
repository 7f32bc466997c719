// Launcher of the Hopper tensor-core attention kernel for long prefill chunks: tiles of
// kWgmmaPrefillRows queries (one warpgroup of 4 warps per 64 of them) against tiles of keys,
// S = Q K^T and O += P V as asynchronous wgmma MMAs whose operands are read from shared memory
// (P from registers), bf16 with f32 accumulation, the online softmax in registers between them.
// A producer warpgroup gathers the K/V tiles from the paged cache with cp.async into a ring of
// three stages (mbarriers between it and the three computing warpgroups). head_dim 64 or
// 128; causal by position, optional sliding window; no key splits (long chunks fill the GPU
// with query tiles alone; short ones take the mma.sync kernel of flash_prefill.cuh).
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"

namespace tokenfab::cuda {

constexpr int kWgmmaPrefillRows = 192;

// grid (ceil(max_query_len / kWgmmaPrefillRows), Hq, num_seqs - p.first_seq); p.splits must
// be 1.
cudaError_t LaunchFlashPrefillWgmma(const AttentionParams& p, int max_query_len,
                                    cudaStream_t stream);

}  // namespace tokenfab::cuda
