#include <algorithm>
#include <cfloat>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/moe_impl.cuh"
#include "backend/cuda/moe_small_batch.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kRouterWarps = 4;  // one expert per warp
constexpr int kGateWarps = 4;    // H split across the warps of a gate/up block
constexpr int kGateRows = 4;     // intermediate rows per gate/up strip
constexpr int kGateStrips = 4;   // strips per gate/up block, streamed one stage ahead
constexpr int kDownRows = 4;     // hidden rows per down block
constexpr int kMaxHidden = 8192;

// The routing names no expert when every remaining logit is -inf or NaN (MoeRoute leaves the
// id at E then); such a slot reads expert 0's weights and is left out of the sum (DownKernel).
__device__ __forceinline__ int ValidExpert(int id, int num_experts) {
  return id >= 0 && id < num_experts ? id : 0;
}

// Token t's routing from its logits, written by every block of the router kernel (so read
// past L1), by MoeRouteKernel's rule through RouteWarp: the same choices and weights for the
// same logits. One warp; kPerLane logits a lane (32 * kPerLane >= E: the top-k rounds run
// on the one SM that routes, after every other block has finished, so their length is the
// kernel's tail).
template <int kPerLane>
__device__ void RouteToken(const MoeSmallBatchParams& p, int t) {
  const int lane = threadIdx.x & 31;
  const float* row = p.logits + static_cast<int64_t>(t) * p.num_experts;
  float v[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int e = lane + 32 * i;
    v[i] = e < p.num_experts ? __ldcg(row + e) : -INFINITY;
  }
  RouteWarp(v, p.num_experts, p.top_k, p.normalize, p.ids + t * p.top_k,
            p.weights + t * p.top_k);
}

// Block b scores experts 4b .. 4b + 3 (a warp each) for every token, from the normalised rows
// it computes itself (block 0 also stores them for the gate/up kernel); the last block to
// finish routes the tokens and resets the ticket.
template <int kT, int kPerLane>
__global__ void __launch_bounds__(kRouterWarps * 32) RouterKernel(MoeSmallBatchParams p) {
  extern __shared__ float x_s[];  // [kT][H]
  __shared__ float scratch[32];
  __shared__ int ticket;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int e = blockIdx.x * kRouterWarps + warp;
  const int h = p.hidden;
  const Bf16x8* w = reinterpret_cast<const Bf16x8*>(
      p.router + static_cast<int64_t>(min(e, p.num_experts - 1)) * h);
  if (lane == 0) PrefetchL2(w, h * 2);
  // The norm weights too: every block reads all of them right after the residual.
  if (threadIdx.x == 32) PrefetchL2(p.norm_weight, h * 4);
  WaitForPriorGrids();
#pragma unroll
  for (int t = 0; t < kT; ++t) {  // RmsNormKernel's arithmetic
    const float* x = p.residual + static_cast<int64_t>(t) * h;
    float sum_sq = 0.0f;
    // Unrolled here and below so that a thread's loads are in flight together: each pass is
    // a few iterations, and rolled they would be as many dependent round trips to L2.
#pragma unroll 4
    for (int i = threadIdx.x * 8; i < h; i += blockDim.x * 8) {
      float v[8];
      Load8(x + i, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) sum_sq += v[j] * v[j];
    }
    const float inv_rms = rsqrtf(BlockSum(sum_sq, scratch) / h + p.eps);
#pragma unroll 4
    for (int i = threadIdx.x * 8; i < h; i += blockDim.x * 8) {
      float v[8];
      Load8(x + i, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = p.norm_weight[i + j] * (v[j] * inv_rms);
      Store8(x_s + t * h + i, v);
      if (blockIdx.x == 0) Store8(p.normed + static_cast<int64_t>(t) * h + i, v);
    }
  }
  __syncthreads();
  if (e < p.num_experts) {
    float acc[kT] = {};
#pragma unroll 8
    for (int v = lane; v < h / 8; v += 32) {
      float wf[8];
      Unpack(LoadReadOnly(w + v), wf);
#pragma unroll
      for (int t = 0; t < kT; ++t) {
        float xf[8];
        Load8(x_s + t * h + v * 8, xf);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[t] += wf[j] * xf[j];
      }
    }
#pragma unroll
    for (int t = 0; t < kT; ++t) {
      const float s = WarpSum(acc[t]);
      if (lane == 0) p.logits[static_cast<int64_t>(t) * p.num_experts + e] = s;
    }
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) ticket = atomicAdd(p.ticket, 1);
  __syncthreads();
  if (ticket != static_cast<int>(gridDim.x) - 1) return;
  __threadfence();
  if (warp < kT) RouteToken<kPerLane>(p, warp);
  if (threadIdx.x == 0) *p.ticket = 0;
}

// Block (kGateStrips strips of kGateRows intermediate rows, (token, slot) pair): each warp
// streams one kGateWarps-th of H for every strip's gate and up rows, in stages of two 16-byte
// steps a lane per row, and issues each stage's loads before computing the one before, so a
// block's stream never waits on its own arithmetic. The warps' sums meet in shared memory and
// give act = silu(gate . x) * (up . x). (One strip a block, as before, took 2.3 waves at 5
// blocks per SM: each wave paid the routing read and a DRAM round trip before streaming, and
// the kernel ran at 68% of the read rate. kGateStrips strips make it one wave at 3 per SM.)
__global__ void __launch_bounds__(kGateWarps * 32) GateUpKernel(MoeSmallBatchParams p) {
  constexpr int kRows = 2 * kGateRows;  // gate rows, then the matching up rows
  __shared__ float partial[kGateStrips][kGateWarps][kRows];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int pair = blockIdx.y, t = pair / p.top_k;
  const int first_strip = blockIdx.x * kGateStrips;
  const int strips = min(kGateStrips, (p.inter + kGateRows - 1) / kGateRows - first_strip);
  const int vecs = p.hidden / 8;
  const int v_begin = vecs * warp / kGateWarps, v_end = vecs * (warp + 1) / kGateWarps;
  const int chunks = max(1, (v_end - v_begin + 63) / 64);  // stages a strip: 64 vectors a warp
  const int stages = strips * chunks;
  const float* x = p.normed + static_cast<int64_t>(t) * p.hidden;
  WaitForPriorGrids();  // the routing is the previous kernel's
  const int e = ValidExpert(p.ids[pair], p.num_experts);
  const __nv_bfloat16* expert = p.gate_up + static_cast<int64_t>(e) * 2 * p.inter * p.hidden;

  auto load = [&](int k, Bf16x8(&w)[2][kRows]) {
    const int s = k / chunks, c = k - s * chunks;
    const int j0 = (first_strip + s) * kGateRows;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int j = min(j0 + r % kGateRows, p.inter - 1) + (r < kGateRows ? 0 : p.inter);
      const Bf16x8* row =
          reinterpret_cast<const Bf16x8*>(expert + static_cast<int64_t>(j) * p.hidden);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int v = v_begin + c * 64 + i * 32 + lane;
        w[i][r] = v < v_end ? LoadReadOnly(row + v) : Bf16x8{};
      }
    }
  };
  float acc[kRows] = {};
  auto compute = [&](int k, const Bf16x8(&w)[2][kRows]) {
    const int s = k / chunks, c = k - s * chunks;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int v = v_begin + c * 64 + i * 32 + lane;
      if (v >= v_end) continue;
      float xf[8];
      Load8(x + v * 8, xf);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float wf[8];
        Unpack(w[i][r], wf);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[r] += wf[j] * xf[j];
      }
    }
    if (c == chunks - 1) {  // the strip is done: its sums to shared memory
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float sum = WarpSum(acc[r]);
        if (lane == 0) partial[s][warp][r] = sum;
        acc[r] = 0.0f;
      }
    }
  };
  // Two register buffers in turn: stage k + 1 loads while stage k computes.
  Bf16x8 a[2][kRows], b[2][kRows];
  load(0, a);
  for (int k = 0; k < stages; k += 2) {
    if (k + 1 < stages) load(k + 1, b);
    compute(k, a);
    if (k + 1 >= stages) break;
    if (k + 2 < stages) load(k + 2, a);
    compute(k + 1, b);
  }
  __syncthreads();
  const int s = threadIdx.x / kGateRows, r = threadIdx.x % kGateRows;
  const int j = (first_strip + s) * kGateRows + r;
  if (s < strips && j < p.inter) {
    float g = 0.0f, u = 0.0f;
#pragma unroll
    for (int w = 0; w < kGateWarps; ++w) {
      g += partial[s][w][r];
      u += partial[s][w][kGateRows + r];
    }
    p.act[static_cast<int64_t>(pair) * p.inter + j] = SiluMul(g, u);
  }
}

// Block (strip of kDownRows hidden rows, token): warp (slot, part) streams one parts-th of the
// slot's expert's down rows against its act; the block adds sum_k weight_k * (its sums), in
// slot order as CombineKernel does, into the residual.
__global__ void DownKernel(MoeSmallBatchParams p, int parts, int prefetch_bytes) {
  extern __shared__ float partial[];  // [top_k * parts][kDownRows]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int t = blockIdx.y, h0 = blockIdx.x * kDownRows;
  const int slot = warp / parts, part = warp % parts;
  // Safe before waiting: the routing comes from the router kernel, two kernels back. The
  // gate/up kernel between calls launch_dependents only after its own wait (WaitForPriorGrids),
  // so this grid starts after the router's grid completed; __ldcg reads past L1.
  const int e = ValidExpert(__ldcg(p.ids + t * p.top_k + slot), p.num_experts);
  // The routing of every slot, for the epilogue, loaded now for the same reason: there its
  // loads would be a loop of dependent round trips at the kernel's end.
  __shared__ int slot_id[32];
  __shared__ float slot_weight[32];
  if (threadIdx.x < p.top_k) {
    slot_id[threadIdx.x] = __ldcg(p.ids + t * p.top_k + threadIdx.x);
    slot_weight[threadIdx.x] = __ldcg(p.weights + t * p.top_k + threadIdx.x);
  }
  const int vecs = p.inter / 8;
  const int v_begin = vecs * part / parts, v_end = vecs * (part + 1) / parts;
  auto row_of = [&](int r) {
    const int64_t row = static_cast<int64_t>(e) * p.hidden + min(h0 + r, p.hidden - 1);
    return reinterpret_cast<const Bf16x8*>(p.down + row * p.inter);
  };
  if (prefetch_bytes > 0 && lane < kDownRows && v_end > v_begin) {
    PrefetchL2(row_of(lane) + v_begin, min((v_end - v_begin) * 16, prefetch_bytes));
  }
  const Bf16x8* rows[kDownRows];
#pragma unroll
  for (int r = 0; r < kDownRows; ++r) rows[r] = row_of(r);
  WaitForPriorGrids();  // act is the previous kernel's
  const float* act = p.act + (static_cast<int64_t>(t) * p.top_k + slot) * p.inter;
  float acc[kDownRows] = {};
  for (int v = v_begin + lane; v < v_end; v += 32) {
    Bf16x8 wv[kDownRows];
#pragma unroll
    for (int r = 0; r < kDownRows; ++r) wv[r] = LoadReadOnly(rows[r] + v);
    float af[8];
    Load8(act + v * 8, af);
#pragma unroll
    for (int r = 0; r < kDownRows; ++r) {
      float wf[8];
      Unpack(wv[r], wf);
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[r] += wf[j] * af[j];
    }
  }
#pragma unroll
  for (int r = 0; r < kDownRows; ++r) {
    const float s = WarpSum(acc[r]);
    if (lane == 0) partial[warp * kDownRows + r] = s;
  }
  __syncthreads();
  const int r = threadIdx.x;
  if (r < kDownRows && h0 + r < p.hidden) {
    float total = 0.0f;
    for (int k = 0; k < p.top_k; ++k) {
      const int id = slot_id[k];
      if (id < 0 || id >= p.num_experts) continue;  // no expert: contributes nothing
      float contrib = 0.0f;
      for (int q = 0; q < parts; ++q) contrib += partial[(k * parts + q) * kDownRows + r];
      total += slot_weight[k] * contrib;
    }
    p.residual[static_cast<int64_t>(t) * p.hidden + h0 + r] += total;
  }
}

// The router kernel for kT tokens whose logits fill per_lane registers a lane (<= 32).
template <int kT>
auto RouterFor(int per_lane) {
  return per_lane <= 2   ? RouterKernel<kT, 2>
         : per_lane <= 4 ? RouterKernel<kT, 4>
         : per_lane <= 8 ? RouterKernel<kT, 8>
                         : RouterKernel<kT, 32>;
}

}  // namespace

bool MoeSmallBatchSupports(const MoeSmallBatchParams& p) {
  return p.num_tokens >= 1 && p.num_tokens <= kMoeSmallMaxTokens && p.hidden > 0 &&
         p.hidden % 8 == 0 && p.hidden <= kMaxHidden && p.inter > 0 && p.inter % 8 == 0 &&
         p.num_experts >= 1 && p.num_experts <= 1024 && p.top_k >= 1 &&
         p.top_k <= std::min(p.num_experts, 32) && Aligned16(p.router) && Aligned16(p.gate_up) &&
         Aligned16(p.down) && Aligned16(p.residual) && Aligned16(p.normed) && Aligned16(p.act) &&
         Aligned16(p.norm_weight);
}

size_t MoeSmallBatchActBytes(int num_tokens, int top_k, int inter) {
  return sizeof(float) * static_cast<size_t>(num_tokens) * top_k * inter;
}

cudaError_t LaunchMoeSmallBatch(const MoeSmallBatchParams& p, cudaStream_t stream) {
  if (!MoeSmallBatchSupports(p)) return cudaErrorInvalidValue;
  const int router_blocks = (p.num_experts + kRouterWarps - 1) / kRouterWarps;
  const size_t x_bytes = sizeof(float) * static_cast<size_t>(p.num_tokens) * p.hidden;
  const int per_lane = (p.num_experts + 31) / 32;
  const auto router = p.num_tokens == 1 ? RouterFor<1>(per_lane) : RouterFor<2>(per_lane);
  cudaFuncSetAttribute(router, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(x_bytes));
  LaunchPdl(router, router_blocks, kRouterWarps * 32, x_bytes, stream, p);
  const int gate_strips = (p.inter + kGateRows - 1) / kGateRows;
  const dim3 gate_grid((gate_strips + kGateStrips - 1) / kGateStrips, p.num_tokens * p.top_k);
  LaunchPdl(GateUpKernel, gate_grid, kGateWarps * 32, 0, stream, p);
  // Few experts per token: split I across up to four warps each, for enough loads in flight.
  const int parts = std::max(1, std::min(4, 8 / p.top_k));
  const int threads = p.top_k * parts * 32;
  const size_t partial_bytes = sizeof(float) * p.top_k * parts * kDownRows;
  const int64_t units = static_cast<int64_t>(p.num_tokens) * p.top_k * parts * p.hidden;
  const int unit_bytes = (p.inter / 8 + parts - 1) / parts * 16;
  const int prefetch = L2PrefetchBytes(DownKernel, threads, partial_bytes, units, unit_bytes,
                                       kDownRows * p.top_k * parts);
  const dim3 down_grid((p.hidden + kDownRows - 1) / kDownRows, p.num_tokens);
  LaunchPdl(DownKernel, down_grid, threads, partial_bytes, stream, p, parts, prefetch);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
