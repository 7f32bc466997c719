// Launcher of the MoE block for decode steps of one or two tokens (H200, Qwen3-30B-A3B shape:
// batch-1 decode 266 against 232 tok/s through the composed block):
// the whole of MoeBlock (ops.h) in three kernels instead of seven.
//
//   router   every block normalises the residual rows itself and scores four experts (one
//            per warp); the last block to finish picks each token's top-k (MoeRoute's rule)
//   gate/up  a block per (token, slot) pair and strip of four intermediate rows, H split
//            across its warps: act = silu(gate . x) * (up . x), f32
//   down     a block per (token, strip of four hidden rows) whose warps take the token's k
//            experts; the weighted sum over k, in slot order, is added into the residual
//
// Weights never depend on the previous kernel, so each kernel asks for its first weight bytes
// in L2 before waiting on it (the down kernel reads the routing, written two kernels back,
// before waiting too: see DownKernel). At one or two tokens an expert chosen twice is read twice,
// which costs less than grouping tokens by expert would.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

constexpr int kMoeSmallMaxTokens = 2;

struct MoeSmallBatchParams {
  float* residual;           // [T, H]
  const float* norm_weight;  // [H]
  float eps;
  const __nv_bfloat16* router;   // [E, H]
  const __nv_bfloat16* gate_up;  // [E, 2I, H]: gate rows, then up rows
  const __nv_bfloat16* down;     // [E, H, I]
  float* normed;                 // [T, H]: written by the router kernel
  float* logits;                 // [T, E]
  int32_t* ids;                  // [T, K]
  float* weights;                // [T, K]
  float* act;                    // [T * K, I]: scratch
  int* ticket;                   // [1]: zero before, left zero after
  int num_tokens;                // 1 .. kMoeSmallMaxTokens
  int hidden;
  int inter;
  int num_experts;
  int top_k;
  bool normalize;
};

// Whether the shapes fit: T <= kMoeSmallMaxTokens, H and I multiples of 8 with H <= 8192,
// E <= 1024, K <= min(E, 32), 16-byte aligned weights.
bool MoeSmallBatchSupports(const MoeSmallBatchParams& p);

// Bytes of MoeSmallBatchParams::act for these sizes.
size_t MoeSmallBatchActBytes(int num_tokens, int top_k, int inter);

cudaError_t LaunchMoeSmallBatch(const MoeSmallBatchParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
