// Launcher of the attention kernel for decode tokens (and short chunks) with head_dim 64, 128
// or 256 and up to 8 query heads per KV head.
//
// One block per (query token, KV head, split of the window); each warp walks keys in groups of
// 32 / (D / 8) lanes per key, each lane holding 8 dims of the G query heads, so a key and its
// value are each read once (16 bytes per lane) for all G heads. Every lane group keeps its own
// online softmax; groups and warps merge through shared memory at the end. Several keys per
// lane group are in flight at a time. With splits, the last block of each (token, KV head) to
// finish merges them, counting with p.split_counters ([T * Hkv], zero between launches).
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"

namespace tokenfab::cuda {

bool AttentionDecodeSupports(const AttentionParams& p);

cudaError_t LaunchAttentionDecode(const AttentionParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
