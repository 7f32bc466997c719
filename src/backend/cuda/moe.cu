#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/moe.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kMaxTopK = 32;
constexpr int kRowsPerBlock = 8;   // one warp per output row
constexpr int kTokensPerPass = 8;  // tokens whose inputs a block keeps in registers at once

// One warp per token: softmax over experts, then k rounds of warp arg-max (ties to the lower
// expert id), as torch.topk over the probabilities.
__global__ void MoeRouteKernel(MoeRouteParams p) {
  const int lane = threadIdx.x & 31;
  const int t = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (t >= p.num_tokens) return;
  const float* row = p.logits + static_cast<int64_t>(t) * p.num_experts;
  float mx = -INFINITY;
  for (int e = lane; e < p.num_experts; e += 32) mx = fmaxf(mx, row[e]);
  mx = WarpMax(mx);
  float sum = 0.0f;
  for (int e = lane; e < p.num_experts; e += 32) sum += __expf(row[e] - mx);
  sum = WarpSum(sum);
  float chosen_sum = 0.0f;
  float chosen_p[kMaxTopK];
  int chosen_e[kMaxTopK];
  for (int k = 0; k < p.top_k; ++k) {
    float best = -INFINITY;
    int best_e = p.num_experts;
    for (int e = lane; e < p.num_experts; e += 32) {
      bool taken = false;
      for (int j = 0; j < k; ++j) taken |= chosen_e[j] == e;
      if (!taken && (row[e] > best || (row[e] == best && e < best_e))) {
        best = row[e];
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
    chosen_e[k] = best_e;
    chosen_p[k] = __expf(best - mx) / sum;
    chosen_sum += chosen_p[k];
  }
  if (lane == 0) {
    for (int k = 0; k < p.top_k; ++k) {
      p.ids[t * p.top_k + k] = chosen_e[k];
      p.weights[t * p.top_k + k] = p.normalize ? chosen_p[k] / chosen_sum : chosen_p[k];
    }
  }
}

struct Scratch {
  int32_t* counts;   // [E]
  int32_t* offsets;  // [E + 1]
  int32_t* pairs;    // [T * K]: (token * K + slot), grouped by expert
  float* act;        // [T * K, I]: silu(gate) * up of each pair
  float* contrib;    // [T * K, H]: expert output of each pair, unweighted
};

size_t Align(size_t n) { return (n + 255) / 256 * 256; }

Scratch Carve(void* base, int t, int k, int e, int inter) {
  char* p = static_cast<char*>(base);
  Scratch s;
  s.counts = reinterpret_cast<int32_t*>(p);
  p += Align(sizeof(int32_t) * e);
  s.offsets = reinterpret_cast<int32_t*>(p);
  p += Align(sizeof(int32_t) * (e + 1));
  s.pairs = reinterpret_cast<int32_t*>(p);
  p += Align(sizeof(int32_t) * t * k);
  s.act = reinterpret_cast<float*>(p);
  p += Align(sizeof(float) * static_cast<size_t>(t) * k * inter);
  s.contrib = reinterpret_cast<float*>(p);
  return s;
}

// One block: counts per expert, exclusive offsets, then pairs laid out expert by expert in
// token order (deterministic).
__global__ void GroupByExpertKernel(MoeExpertsParams p, Scratch s) {
  const int pairs = p.num_tokens * p.top_k;
  for (int e = threadIdx.x; e < p.num_experts; e += blockDim.x) s.counts[e] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
    const int e = p.ids[i];
    if (e >= 0 && e < p.num_experts) atomicAdd(&s.counts[e], 1);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int running = 0;
    for (int e = 0; e < p.num_experts; ++e) {
      s.offsets[e] = running;
      running += s.counts[e];
    }
    s.offsets[p.num_experts] = running;
  }
  __syncthreads();
  // Stable placement: each expert's pairs in increasing pair index.
  for (int e = threadIdx.x; e < p.num_experts; e += blockDim.x) {
    int next = s.offsets[e];
    for (int i = 0; i < pairs; ++i) {
      if (p.ids[i] == e) s.pairs[next++] = i;
    }
  }
}

// Block (expert e, strip of kRowsPerBlock rows of gate and up): for each of e's pairs,
// act = silu(gate_row . x) * (up_row . x).
template <typename XT>
__global__ void ExpertGateUpKernel(MoeExpertsParams p, Scratch s) {
  const XT* x = static_cast<const XT*>(p.x);
  const int e = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row = blockIdx.x * kRowsPerBlock + warp;
  if (row >= p.inter) return;
  const int begin = s.offsets[e], end = s.offsets[e + 1];
  const __nv_bfloat16* gate_w =
      p.gate_up + (static_cast<int64_t>(e) * 2 * p.inter + row) * p.hidden;
  const __nv_bfloat16* up_w = gate_w + static_cast<int64_t>(p.inter) * p.hidden;
  for (int i0 = begin; i0 < end; i0 += kTokensPerPass) {
    const int n = min(kTokensPerPass, end - i0);
    float g[kTokensPerPass] = {}, u[kTokensPerPass] = {};
    for (int c = lane; c < p.hidden; c += 32) {
      const float gw = ToFloat(gate_w[c]), uw = ToFloat(up_w[c]);
#pragma unroll
      for (int j = 0; j < kTokensPerPass; ++j) {
        if (j < n) {
          const int token = s.pairs[i0 + j] / p.top_k;
          const float xv = ToFloat(x[static_cast<int64_t>(token) * p.hidden + c]);
          g[j] += gw * xv;
          u[j] += uw * xv;
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kTokensPerPass; ++j) {
      if (j < n) {
        const float gs = WarpSum(g[j]), us = WarpSum(u[j]);
        if (lane == 0) {
          s.act[static_cast<int64_t>(s.pairs[i0 + j]) * p.inter + row] =
              gs / (1.0f + __expf(-gs)) * us;
        }
      }
    }
  }
}

// Block (expert e, strip of rows of down): contrib[pair][row] = down_row . act[pair].
__global__ void ExpertDownKernel(MoeExpertsParams p, Scratch s) {
  const int e = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row = blockIdx.x * kRowsPerBlock + warp;
  if (row >= p.hidden) return;
  const int begin = s.offsets[e], end = s.offsets[e + 1];
  const __nv_bfloat16* w = p.down + (static_cast<int64_t>(e) * p.hidden + row) * p.inter;
  for (int i0 = begin; i0 < end; i0 += kTokensPerPass) {
    const int n = min(kTokensPerPass, end - i0);
    float acc[kTokensPerPass] = {};
    for (int c = lane; c < p.inter; c += 32) {
      const float wv = ToFloat(w[c]);
#pragma unroll
      for (int j = 0; j < kTokensPerPass; ++j) {
        if (j < n) acc[j] += wv * s.act[static_cast<int64_t>(s.pairs[i0 + j]) * p.inter + c];
      }
    }
#pragma unroll
    for (int j = 0; j < kTokensPerPass; ++j) {
      if (j < n) {
        const float sum = WarpSum(acc[j]);
        if (lane == 0) s.contrib[static_cast<int64_t>(s.pairs[i0 + j]) * p.hidden + row] = sum;
      }
    }
  }
}

// out[t] = sum_k weight[t, k] * contrib[t * K + k], in slot order.
__global__ void CombineKernel(MoeExpertsParams p, Scratch s) {
  const int t = blockIdx.x;
  for (int c = threadIdx.x; c < p.hidden; c += blockDim.x) {
    float sum = 0.0f;
    for (int k = 0; k < p.top_k; ++k) {
      sum += p.weights[t * p.top_k + k] *
             s.contrib[(static_cast<int64_t>(t) * p.top_k + k) * p.hidden + c];
    }
    p.out[static_cast<int64_t>(t) * p.hidden + c] = __float2bfloat16(sum);
  }
}

}  // namespace

cudaError_t LaunchMoeRoute(const MoeRouteParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  if (p.top_k > kMaxTopK) return cudaErrorInvalidValue;
  constexpr int kWarps = 4;
  MoeRouteKernel<<<(p.num_tokens + kWarps - 1) / kWarps, kWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

size_t MoeScratchBytes(int t, int k, int e, int h, int inter) {
  return Align(sizeof(int32_t) * e) + Align(sizeof(int32_t) * (e + 1)) +
         Align(sizeof(int32_t) * t * k) + Align(sizeof(float) * static_cast<size_t>(t) * k * inter) +
         Align(sizeof(float) * static_cast<size_t>(t) * k * h);
}

cudaError_t LaunchMoeExperts(const MoeExpertsParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  const Scratch s = Carve(p.scratch, p.num_tokens, p.top_k, p.num_experts, p.inter);
  GroupByExpertKernel<<<1, 256, 0, stream>>>(p, s);
  const dim3 gate_grid((p.inter + kRowsPerBlock - 1) / kRowsPerBlock, p.num_experts);
  if (p.x_f32) {
    ExpertGateUpKernel<float><<<gate_grid, kRowsPerBlock * 32, 0, stream>>>(p, s);
  } else {
    ExpertGateUpKernel<__nv_bfloat16><<<gate_grid, kRowsPerBlock * 32, 0, stream>>>(p, s);
  }
  const dim3 down_grid((p.hidden + kRowsPerBlock - 1) / kRowsPerBlock, p.num_experts);
  ExpertDownKernel<<<down_grid, kRowsPerBlock * 32, 0, stream>>>(p, s);
  CombineKernel<<<p.num_tokens, 256, 0, stream>>>(p, s);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
