// Launcher of the attention kernel for decode tokens (and short chunks) with head_dim 64, 128
// or 256 and up to 8 query heads per KV head.
//
// One block per (query token, KV head, split of the window), reading each key and value once
// for all G query heads of the group (GQA). For head_dim 64 and 128 the block's four warps take
// 16 keys at a time on tensor cores (QK^T and PV as m16n8k16 mma with the group's heads as
// rows), which at 64 sequences is 1.12x (600 context) to 1.29x (4096) the decode throughput of
// the CUDA-core kernel (H200, bench/results/2026-12-02_h200_decode-attention-mma-ab_*.json).
// head_dim 256 runs on CUDA cores: lane groups of 32 / (D / 8) lanes per key, each lane holding
// 8 dims of the G heads. Every warp or lane group keeps its own online softmax; they merge
// through shared memory at the end. With splits, the last block of each (token, KV head) to
// finish merges them, counting with p.split_counters ([T * Hkv], zero between launches), every
// thread folding a chunk of splits per round trip to L2; and the tensor-core kernel reads its
// first tile of keys before waiting for the kernel before it, when those keys predate the step.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/attention.cuh"

namespace tokenfab::cuda {

bool AttentionDecodeSupports(const AttentionParams& p);

cudaError_t LaunchAttentionDecode(const AttentionParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
