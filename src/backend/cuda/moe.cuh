// Launchers of the mixture-of-experts kernels: routing (softmax over experts, top-k, optional
// renormalisation) and the routed expert MLPs.
//
// Expert MLPs run grouped by expert: a small kernel counts the tokens each expert received and
// lays the (token, slot) pairs out expert by expert, cut into tiles of one expert's pairs. With
// about a token per expert or more, the tiles run as grouped GEMMs on tensor cores
// (moe_expert_mma.cuh). Otherwise GEMV kernels give each block one expert that has tokens and a
// strip of output rows (16-byte weight loads, several rows per warp), and the block loops over
// that expert's tokens a few at a time; either way an expert's weights are streamed once per
// step for a decode batch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

struct MoeRouteParams {
  const float* logits;  // [T, E]
  int32_t* ids;         // [T, K]
  float* weights;       // [T, K]
  int num_tokens;
  int num_experts;
  int top_k;
  bool normalize;
};
cudaError_t LaunchMoeRoute(const MoeRouteParams& p, cudaStream_t stream);
// The most experts LaunchMoeRoute supports.
int MoeMaxExperts();

// Scratch of LaunchMoeExperts, in bytes, for the given sizes.
size_t MoeScratchBytes(int num_tokens, int top_k, int num_experts, int hidden, int inter);

struct MoeExpertsParams {
  const void* x;                 // [T, H], bf16 or f32
  bool x_f32;
  const int32_t* ids;            // [T, K]
  const float* weights;          // [T, K]
  const __nv_bfloat16* gate_up;  // [E, 2I, H]
  const __nv_bfloat16* down;     // [E, H, I]
  float* residual;               // [T, H]: += the weighted expert outputs
  void* scratch;                 // MoeScratchBytes
  int num_tokens;
  int top_k;
  int num_experts;
  int hidden;
  int inter;
};
cudaError_t LaunchMoeExperts(const MoeExpertsParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
