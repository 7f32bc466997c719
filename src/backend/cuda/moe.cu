#include <algorithm>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/moe.cuh"
#include "backend/cuda/moe_impl.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kMaxTopK = 32;

// One warp per token, the token's logits held in registers (kPerLane per lane, expert
// e = lane + 32 * i), routed by RouteWarp.
template <int kPerLane>
__global__ void MoeRouteKernel(MoeRouteParams p) {
  WaitForPriorGrids();
  const int lane = threadIdx.x & 31;
  const int t = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (t >= p.num_tokens) return;
  const float* row = p.logits + static_cast<int64_t>(t) * p.num_experts;
  float v[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int e = lane + 32 * i;
    v[i] = e < p.num_experts ? row[e] : -INFINITY;
  }
  RouteWarp(v, p.num_experts, p.top_k, p.normalize, p.ids + t * p.top_k,
            p.weights + t * p.top_k);
}

struct Scratch {
  int32_t* counts;   // [E]
  int32_t* offsets;  // [E + 1]
  int32_t* active;   // [E + 1]: ids of experts with tokens, then (at [E]) how many there are
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
  s.active = reinterpret_cast<int32_t*>(p);
  p += Align(sizeof(int32_t) * (e + 1));
  s.pairs = reinterpret_cast<int32_t*>(p);
  p += Align(sizeof(int32_t) * t * k);
  s.act = reinterpret_cast<float*>(p);
  p += Align(sizeof(float) * static_cast<size_t>(t) * k * inter);
  s.contrib = reinterpret_cast<float*>(p);
  return s;
}

// One block: counts per expert, exclusive offsets, the list of experts that have tokens, then
// the pairs laid out expert by expert in pair order (deterministic).
__global__ void GroupByExpertKernel(MoeExpertsParams p, Scratch s) {
  WaitForPriorGrids();
  constexpr int kThreads = 256;
  __shared__ int sums[kThreads], actives[kThreads];
  const int pairs = p.num_tokens * p.top_k;
  const int tid = threadIdx.x;
  for (int e = tid; e < p.num_experts; e += kThreads) s.counts[e] = 0;
  __syncthreads();
  for (int i = tid; i < pairs; i += kThreads) {
    const int e = p.ids[i];
    if (e >= 0 && e < p.num_experts) atomicAdd(&s.counts[e], 1);
  }
  __syncthreads();
  // Thread tid owns experts [tid * per, (tid + 1) * per): scan their counts and active flags.
  const int per = (p.num_experts + kThreads - 1) / kThreads;
  const int begin = min(p.num_experts, tid * per), end = min(p.num_experts, begin + per);
  int count = 0, active = 0;
  for (int e = begin; e < end; ++e) {
    count += s.counts[e];
    active += s.counts[e] > 0;
  }
  sums[tid] = count;
  actives[tid] = active;
  __syncthreads();
  for (int offset = 1; offset < kThreads; offset <<= 1) {  // inclusive Hillis-Steele scan
    const int c = tid >= offset ? sums[tid - offset] : 0;
    const int a = tid >= offset ? actives[tid - offset] : 0;
    __syncthreads();
    sums[tid] += c;
    actives[tid] += a;
    __syncthreads();
  }
  int running = sums[tid] - count, slot = actives[tid] - active;
  for (int e = begin; e < end; ++e) {
    s.offsets[e] = running;
    running += s.counts[e];
    if (s.counts[e] > 0) s.active[slot++] = e;
  }
  if (tid == kThreads - 1) {
    s.offsets[p.num_experts] = sums[tid];
    s.active[p.num_experts] = actives[tid];
  }
  __syncthreads();
  // Pairs laid out expert by expert, each expert's in pair order (deterministic).
  for (int e = tid; e < p.num_experts; e += kThreads) {
    if (s.counts[e] == 0) continue;
    int next = s.offsets[e];
    for (int i = 0; i < pairs; ++i) {
      if (p.ids[i] == e) s.pairs[next++] = i;
    }
  }
}

// kW consecutive elements as floats: 8 per 16-byte load when rows are multiples of 8 elements,
// else one at a time (odd sizes only occur in tests; real models are multiples of 8).
template <int kW>
__device__ __forceinline__ void LoadW(const __nv_bfloat16* p, float v[kW]) {
  if constexpr (kW == 8) {
    Unpack(LoadReadOnly(reinterpret_cast<const Bf16x8*>(p)), v);
  } else {
    v[0] = ToFloat(*p);
  }
}
template <int kW, typename T>
__device__ __forceinline__ void LoadX(const T* p, float v[kW]) {
  if constexpr (kW == 8) {
    Load8(p, v);
  } else {
    v[0] = ToFloat(*p);
  }
}

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kTokens = 4;  // tokens of an expert handled per pass over its weight rows

// Block (y-th expert that has tokens, strip of kWarps * kRowsPerWarp intermediate rows): each
// warp streams 4 gate rows and the matching 4 up rows with 16-byte loads and produces
// act = silu(gate . x) * (up . x) for up to kTokens of the expert's tokens per pass.
template <typename XT, int kW>
__global__ void __launch_bounds__(kWarps * 32) ExpertGateUpKernel(MoeExpertsParams p, Scratch s) {
  WaitForPriorGrids();
  if (blockIdx.y >= s.active[p.num_experts]) return;
  const int e = s.active[blockIdx.y];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = (blockIdx.x * kWarps + warp) * kRowsPerWarp;
  if (row0 >= p.inter) return;
  const XT* x = static_cast<const XT*>(p.x);
  const int begin = s.offsets[e], end = s.offsets[e + 1];
  const __nv_bfloat16* gate[kRowsPerWarp];
  const __nv_bfloat16* up[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = min(row0 + r, p.inter - 1);
    gate[r] = p.gate_up + (static_cast<int64_t>(e) * 2 * p.inter + row) * p.hidden;
    up[r] = p.gate_up + (static_cast<int64_t>(e) * 2 * p.inter + p.inter + row) * p.hidden;
  }
  const int vecs = p.hidden / kW;
  for (int i0 = begin; i0 < end; i0 += kTokens) {
    const int n = min(kTokens, end - i0);
    int64_t xoff[kTokens];
#pragma unroll
    for (int j = 0; j < kTokens; ++j) {
      xoff[j] = static_cast<int64_t>(s.pairs[i0 + min(j, n - 1)] / p.top_k) * p.hidden;
    }
    float g[kRowsPerWarp][kTokens] = {}, u[kRowsPerWarp][kTokens] = {};
    for (int v = lane; v < vecs; v += 32) {
      float gf[kRowsPerWarp][kW], uf[kRowsPerWarp][kW];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        LoadW<kW>(gate[r] + v * kW, gf[r]);
        LoadW<kW>(up[r] + v * kW, uf[r]);
      }
#pragma unroll
      for (int j = 0; j < kTokens; ++j) {
        if (j < n) {
          float xf[kW];
          LoadX<kW>(x + xoff[j] + v * kW, xf);
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
            for (int c = 0; c < kW; ++c) {
              g[r][j] += gf[r][c] * xf[c];
              u[r][j] += uf[r][c] * xf[c];
            }
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
      for (int j = 0; j < kTokens; ++j) {
        if (j < n) {
          const float gs = WarpSum(g[r][j]), us = WarpSum(u[r][j]);
          if (lane == 0 && row0 + r < p.inter) {
            s.act[static_cast<int64_t>(s.pairs[i0 + j]) * p.inter + row0 + r] =
                gs / (1.0f + __expf(-gs)) * us;
          }
        }
      }
    }
  }
}

// Block (y-th expert with tokens, strip of hidden rows): contrib[pair][row] = down_row . act.
template <int kW>
__global__ void __launch_bounds__(kWarps * 32) ExpertDownKernel(MoeExpertsParams p, Scratch s) {
  WaitForPriorGrids();
  if (blockIdx.y >= s.active[p.num_experts]) return;
  const int e = s.active[blockIdx.y];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = (blockIdx.x * kWarps + warp) * kRowsPerWarp;
  if (row0 >= p.hidden) return;
  const int begin = s.offsets[e], end = s.offsets[e + 1];
  const __nv_bfloat16* w[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = min(row0 + r, p.hidden - 1);
    w[r] = p.down + (static_cast<int64_t>(e) * p.hidden + row) * p.inter;
  }
  const int vecs = p.inter / kW;
  for (int i0 = begin; i0 < end; i0 += kTokens) {
    const int n = min(kTokens, end - i0);
    float acc[kRowsPerWarp][kTokens] = {};
    for (int v = lane; v < vecs; v += 32) {
      float wf[kRowsPerWarp][kW];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) LoadW<kW>(w[r] + v * kW, wf[r]);
#pragma unroll
      for (int j = 0; j < kTokens; ++j) {
        if (j < n) {
          float af[kW];
          LoadX<kW>(s.act + static_cast<int64_t>(s.pairs[i0 + j]) * p.inter + v * kW, af);
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
            for (int c = 0; c < kW; ++c) acc[r][j] += wf[r][c] * af[c];
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
      for (int j = 0; j < kTokens; ++j) {
        if (j < n) {
          const float sum = WarpSum(acc[r][j]);
          if (lane == 0 && row0 + r < p.hidden) {
            s.contrib[static_cast<int64_t>(s.pairs[i0 + j]) * p.hidden + row0 + r] = sum;
          }
        }
      }
    }
  }
}

// residual[t] += sum_k weight[t, k] * contrib[t * K + k], in slot order.
__global__ void CombineKernel(MoeExpertsParams p, Scratch s) {
  WaitForPriorGrids();
  const int t = blockIdx.x;
  for (int c = threadIdx.x; c < p.hidden; c += blockDim.x) {
    float sum = 0.0f;
    for (int k = 0; k < p.top_k; ++k) {
      sum += p.weights[t * p.top_k + k] *
             s.contrib[(static_cast<int64_t>(t) * p.top_k + k) * p.hidden + c];
    }
    p.residual[static_cast<int64_t>(t) * p.hidden + c] += sum;
  }
}

}  // namespace

cudaError_t LaunchMoeRoute(const MoeRouteParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  if (p.top_k > kMaxTopK || p.top_k > p.num_experts) return cudaErrorInvalidValue;
  constexpr int kRouteWarps = 4;
  const dim3 grid((p.num_tokens + kRouteWarps - 1) / kRouteWarps);
  const int per_lane = (p.num_experts + 31) / 32;
  if (per_lane <= 2) LaunchPdl(MoeRouteKernel<2>, grid, kRouteWarps * 32, 0, stream, p);
  else if (per_lane <= 4) LaunchPdl(MoeRouteKernel<4>, grid, kRouteWarps * 32, 0, stream, p);
  else if (per_lane <= 8) LaunchPdl(MoeRouteKernel<8>, grid, kRouteWarps * 32, 0, stream, p);
  else if (per_lane <= 16) LaunchPdl(MoeRouteKernel<16>, grid, kRouteWarps * 32, 0, stream, p);
  else if (per_lane <= 32) LaunchPdl(MoeRouteKernel<32>, grid, kRouteWarps * 32, 0, stream, p);
  else return cudaErrorInvalidValue;
  return cudaGetLastError();
}

int MoeMaxExperts() { return 32 * 32; }

size_t MoeScratchBytes(int t, int k, int e, int h, int inter) {
  return Align(sizeof(int32_t) * e) + 2 * Align(sizeof(int32_t) * (e + 1)) +
         Align(sizeof(int32_t) * t * k) + Align(sizeof(float) * static_cast<size_t>(t) * k * inter) +
         Align(sizeof(float) * static_cast<size_t>(t) * k * h);
}

cudaError_t LaunchMoeExperts(const MoeExpertsParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  const bool vec = p.hidden % 8 == 0 && p.inter % 8 == 0 && Aligned16(p.x) &&
                   Aligned16(p.gate_up) && Aligned16(p.down);
  const Scratch s = Carve(p.scratch, p.num_tokens, p.top_k, p.num_experts, p.inter);
  LaunchPdl(GroupByExpertKernel, 1, 256, 0, stream, p, s);
  // One grid row per expert that can have tokens; rows past the active count exit at once.
  const int max_active = std::min(p.num_experts, p.num_tokens * p.top_k);
  constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;
  const dim3 gate_grid((p.inter + kRowsPerBlock - 1) / kRowsPerBlock, max_active);
  const dim3 down_grid((p.hidden + kRowsPerBlock - 1) / kRowsPerBlock, max_active);
  if (vec) {
    if (p.x_f32) LaunchPdl(ExpertGateUpKernel<float, 8>, gate_grid, kWarps * 32, 0, stream, p, s);
    else LaunchPdl(ExpertGateUpKernel<__nv_bfloat16, 8>, gate_grid, kWarps * 32, 0, stream, p, s);
    LaunchPdl(ExpertDownKernel<8>, down_grid, kWarps * 32, 0, stream, p, s);
  } else {
    if (p.x_f32) LaunchPdl(ExpertGateUpKernel<float, 1>, gate_grid, kWarps * 32, 0, stream, p, s);
    else LaunchPdl(ExpertGateUpKernel<__nv_bfloat16, 1>, gate_grid, kWarps * 32, 0, stream, p, s);
    LaunchPdl(ExpertDownKernel<1>, down_grid, kWarps * 32, 0, stream, p, s);
  }
  LaunchPdl(CombineKernel, p.num_tokens, 256, 0, stream, p, s);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
