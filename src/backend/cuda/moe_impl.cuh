// Device helpers shared by the MoE kernels (moe.cu, moe_small_batch.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/common_impl.cuh"

namespace tokenfab::cuda {

// One token's routing by MoeRoute's rule, computed by one warp: softmax statistics over the
// token's E logits, then k rounds of warp arg-max (ties to the lower expert id, as torch.topk
// over the probabilities), optionally renormalising the k weights. Lane l holds the logits of
// experts l + 32 i in v[i] (-inf past E). Lane j < k keeps choice j in registers and writes
// ids[j] and weights[j] once at the end: a renormalisation that read the weights back from
// global memory would cost k dependent round trips to L2 in a kernel of a few microseconds.
template <int kPerLane>
__device__ __forceinline__ void RouteWarp(const float (&v)[kPerLane], int num_experts, int top_k,
                                          bool normalize, int32_t* ids, float* weights) {
  const int lane = threadIdx.x & 31;
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) mx = fmaxf(mx, v[i]);
  mx = WarpMax(mx);
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) sum += lane + 32 * i < num_experts ? __expf(v[i] - mx) : 0.0f;
  sum = WarpSum(sum);
  unsigned taken = 0;  // bit i: expert lane + 32 * i already chosen
  float chosen_sum = 0.0f;
  int my_id = num_experts;  // choice `lane`, for lanes below top_k
  float my_prob = 0.0f;
  for (int k = 0; k < top_k; ++k) {
    float best = -INFINITY;
    int best_e = num_experts;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int e = lane + 32 * i;
      if (e < num_experts && !(taken >> i & 1u) &&
          (v[i] > best || (v[i] == best && e < best_e))) {
        best = v[i];
        best_e = e;
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float other = __shfl_xor_sync(kFullMask, best, offset);
      const int other_e = __shfl_xor_sync(kFullMask, best_e, offset);
      if (other > best || (other == best && other_e < best_e)) {
        best = other;
        best_e = other_e;
      }
    }
    if ((best_e & 31) == lane) taken |= 1u << (best_e >> 5);
    const float prob = __expf(best - mx) / sum;
    chosen_sum += prob;
    if (lane == k) {
      my_id = best_e;
      my_prob = prob;
    }
  }
  if (lane < top_k) {
    ids[lane] = my_id;
    weights[lane] = normalize ? my_prob / chosen_sum : my_prob;
  }
}

}  // namespace tokenfab::cuda
