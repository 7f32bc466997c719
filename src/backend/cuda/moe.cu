#include <algorithm>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/moe.cuh"
#include "backend/cuda/moe_expert_mma.cuh"
#include "backend/cuda/moe_impl.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kMaxTopK = 32;
// Whether a step's experts run on tensor cores (moe_expert_mma.cu): once there is about a
// token per expert. With fewer, streaming each expert's weights through CUDA-core dot products
// (which read them just as once, without the tiles' padding) is faster: Qwen3-30B-A3B on an
// H200, tensor cores against dot products, 0.73x decoding 8 sequences (64 pairs for 128
// experts), 1.49x prefilling 16 tokens (128 pairs), 1.22x decoding 64 and 10-12x prefilling
// 512-4096 tokens.
bool UseExpertMma(const MoeExpertsParams& p) {
  return p.num_tokens >= 3 && p.num_tokens * p.top_k >= p.num_experts;
}

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
  int32_t* offsets;      // [E + 1]
  int32_t* active;       // [E + 1]: ids of experts with tokens, then (at [E]) how many there are
  int32_t* pairs;        // [T * K]: (token * K + slot), grouped by expert
  int32_t* tile_expert;  // [MaxTiles]: tiles of up to kExpertTileRows pairs of one expert
  int32_t* tile_begin;   // [MaxTiles]
  int32_t* tile_end;     // [MaxTiles]
  int32_t* num_tiles;    // [1]
  float* act;            // [T * K, I]: silu(gate) * up of each pair (bf16 [T * K, I] on the
                         // tensor-core path, in pairs order)
  float* contrib;        // [T * K, H]: expert output of each pair, unweighted
  __nv_bfloat16* x_bf16;  // [T, H]: f32 inputs rounded for the tensor-core path
};

size_t Align(size_t n) { return (n + 255) / 256 * 256; }

// Tiles of up to kExpertTileRows pairs, each of one expert: at most one partial tile per
// expert that has tokens.
int MaxTiles(int t, int k, int e) { return t * k / kExpertTileRows + std::min(e, t * k) + 1; }

// The scratch arrays from `base`; `bytes` (if given) receives the total size.
Scratch Carve(void* base, int t, int k, int e, int h, int inter, size_t* bytes = nullptr) {
  size_t used = 0;
  auto take = [base, &used](size_t n) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(base) + used;
    used += Align(n);
    return at;
  };
  const int tiles = MaxTiles(t, k, e);
  const size_t pairs = static_cast<size_t>(t) * k;
  Scratch s;
  s.offsets = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * (e + 1)));
  s.active = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * (e + 1)));
  s.pairs = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * pairs));
  s.tile_expert = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * tiles));
  s.tile_begin = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * tiles));
  s.tile_end = reinterpret_cast<int32_t*>(take(sizeof(int32_t) * tiles));
  s.num_tiles = reinterpret_cast<int32_t*>(take(sizeof(int32_t)));
  s.act = reinterpret_cast<float*>(take(sizeof(float) * pairs * inter));
  s.contrib = reinterpret_cast<float*>(take(sizeof(float) * pairs * h));
  s.x_bf16 =
      reinterpret_cast<__nv_bfloat16*>(take(sizeof(__nv_bfloat16) * static_cast<size_t>(t) * h));
  if (bytes) *bytes = used;
  return s;
}

constexpr int kGroupThreads = 1024;
constexpr int kGroupWarps = kGroupThreads / 32;

// Dynamic shared memory of GroupByExpertKernel: a running slot per expert and a count per
// (warp, expert).
size_t GroupSharedBytes(int e) { return sizeof(int) * static_cast<size_t>(e) * (1 + kGroupWarps); }

// One block: counts per expert, exclusive offsets, the experts that have tokens and their
// tiles, then the pairs laid out expert by expert, each expert's in pair order (deterministic):
// kGroupThreads pairs at a time, a pair's rank among the same expert's pairs of its warp by
// __match_any_sync, the warps' counts chained per expert in warp order.
__global__ void __launch_bounds__(kGroupThreads)
    GroupByExpertKernel(MoeExpertsParams p, Scratch s) {
  WaitForPriorGrids();
  extern __shared__ int group_smem[];
  int* next = group_smem;                        // [E]: counts, then each expert's next slot
  int* warp_count = group_smem + p.num_experts;  // [kGroupWarps][E]
  __shared__ int sums[kGroupThreads], actives[kGroupThreads], tiles[kGroupThreads];
  const int pairs = p.num_tokens * p.top_k, E = p.num_experts;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int i = tid; i < E * (1 + kGroupWarps); i += kGroupThreads) group_smem[i] = 0;
  __syncthreads();
  for (int i = tid; i < pairs; i += kGroupThreads) {
    const int e = p.ids[i];
    if (e >= 0 && e < E) atomicAdd(&next[e], 1);
  }
  __syncthreads();
  // Thread tid owns experts [tid * per, (tid + 1) * per): scan their counts, active flags and
  // tiles.
  const int per = (E + kGroupThreads - 1) / kGroupThreads;
  const int begin = min(E, tid * per), end = min(E, begin + per);
  int count = 0, active = 0, tile_count = 0;
  for (int e = begin; e < end; ++e) {
    count += next[e];
    active += next[e] > 0;
    tile_count += (next[e] + kExpertTileRows - 1) / kExpertTileRows;
  }
  sums[tid] = count;
  actives[tid] = active;
  tiles[tid] = tile_count;
  __syncthreads();
  for (int offset = 1; offset < kGroupThreads; offset <<= 1) {  // inclusive Hillis-Steele scan
    const int c = tid >= offset ? sums[tid - offset] : 0;
    const int a = tid >= offset ? actives[tid - offset] : 0;
    const int b = tid >= offset ? tiles[tid - offset] : 0;
    __syncthreads();
    sums[tid] += c;
    actives[tid] += a;
    tiles[tid] += b;
    __syncthreads();
  }
  int running = sums[tid] - count, slot = actives[tid] - active, tile = tiles[tid] - tile_count;
  for (int e = begin; e < end; ++e) {
    const int n = next[e];
    s.offsets[e] = running;
    if (n > 0) s.active[slot++] = e;
    for (int b = running; b < running + n; b += kExpertTileRows, ++tile) {
      s.tile_expert[tile] = e;
      s.tile_begin[tile] = b;
      s.tile_end[tile] = min(b + kExpertTileRows, running + n);
    }
    next[e] = running;
    running += n;
  }
  if (tid == kGroupThreads - 1) {
    s.offsets[E] = sums[tid];
    s.active[E] = actives[tid];
    *s.num_tiles = tiles[tid];
  }
  __syncthreads();
  const unsigned lower = (1u << lane) - 1;
  for (int base = 0; base < pairs; base += kGroupThreads) {
    const int i = base + tid;
    const int id = i < pairs ? p.ids[i] : -1;
    const bool valid = id >= 0 && id < E;
    const unsigned peers = __match_any_sync(kFullMask, valid ? id : -1);
    const int rank = __popc(peers & lower);
    if (valid && rank == 0) warp_count[warp * E + id] = __popc(peers);
    __syncthreads();
    for (int e = tid; e < E; e += kGroupThreads) {  // counts -> each warp's first slot
      int at = next[e];
      for (int w = 0; w < kGroupWarps; ++w) {
        const int c = warp_count[w * E + e];
        warp_count[w * E + e] = at;
        at += c;
      }
      next[e] = at;
    }
    __syncthreads();
    if (valid) s.pairs[warp_count[warp * E + id] + rank] = i;
    __syncthreads();
    for (int idx = tid; idx < kGroupWarps * E; idx += kGroupThreads) warp_count[idx] = 0;
    __syncthreads();
  }
}

// x rounded to bf16 for the tensor-core path, 8 elements at a time (H % 8 == 0 there).
__global__ void RoundRowsToBf16Kernel(const float* x, __nv_bfloat16* out, int64_t n8) {
  WaitForPriorGrids();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n8;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v[8];
    Load8(x + 8 * i, v);
    Store8(out + 8 * i, v);
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
            s.act[static_cast<int64_t>(s.pairs[i0 + j]) * p.inter + row0 + r] = SiluMul(gs, us);
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
      const int id = p.ids[t * p.top_k + k];
      if (id < 0 || id >= p.num_experts) continue;  // no expert: no tile wrote its contrib
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
  size_t bytes = 0;
  Carve(nullptr, t, k, e, h, inter, &bytes);
  return bytes;
}

namespace {

// The tensor-core kernels' view of the step: x rounded to bf16 when it is f32, act as bf16.
ExpertMmaParams TensorCoreParams(const MoeExpertsParams& p, const Scratch& s) {
  ExpertMmaParams mma;
  mma.x = p.x_f32 ? s.x_bf16 : static_cast<const __nv_bfloat16*>(p.x);
  mma.pairs = s.pairs;
  mma.tile_expert = s.tile_expert;
  mma.tile_begin = s.tile_begin;
  mma.tile_end = s.tile_end;
  mma.num_tiles = s.num_tiles;
  mma.gate_up = p.gate_up;
  mma.down = p.down;
  mma.act = reinterpret_cast<__nv_bfloat16*>(s.act);
  mma.contrib = s.contrib;
  mma.top_k = p.top_k;
  mma.hidden = p.hidden;
  mma.inter = p.inter;
  return mma;
}

cudaError_t LaunchExpertsOnTensorCores(const MoeExpertsParams& p, const Scratch& s,
                                       const ExpertMmaParams& mma, cudaStream_t stream) {
  if (p.x_f32) {
    const int64_t n8 = static_cast<int64_t>(p.num_tokens) * p.hidden / 8;
    const int blocks = static_cast<int>(std::min<int64_t>((n8 + 255) / 256, 1024));
    LaunchPdl(RoundRowsToBf16Kernel, blocks, 256, 0, stream, static_cast<const float*>(p.x),
              s.x_bf16, n8);
  }
  const int max_tiles = MaxTiles(p.num_tokens, p.top_k, p.num_experts);
  const cudaError_t err = LaunchExpertGateUpMma(mma, max_tiles, stream);
  return err != cudaSuccess ? err : LaunchExpertDownMma(mma, max_tiles, stream);
}

// One grid row per expert that can have tokens; rows past the active count exit at once.
void LaunchExpertGemvs(const MoeExpertsParams& p, const Scratch& s, bool vec,
                       cudaStream_t stream) {
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
}

}  // namespace

cudaError_t LaunchMoeExperts(const MoeExpertsParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  if (p.num_experts > MoeMaxExperts()) return cudaErrorInvalidValue;
  const bool vec = p.hidden % 8 == 0 && p.inter % 8 == 0 && Aligned16(p.x) &&
                   Aligned16(p.gate_up) && Aligned16(p.down);
  const Scratch s = Carve(p.scratch, p.num_tokens, p.top_k, p.num_experts, p.hidden, p.inter);
  const size_t group_smem = GroupSharedBytes(p.num_experts);
  cudaFuncSetAttribute(GroupByExpertKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(group_smem));
  LaunchPdl(GroupByExpertKernel, 1, kGroupThreads, group_smem, stream, p, s);
  const ExpertMmaParams mma = TensorCoreParams(p, s);
  if (vec && UseExpertMma(p) && ExpertMmaSupports(mma)) {
    const cudaError_t err = LaunchExpertsOnTensorCores(p, s, mma, stream);
    if (err != cudaSuccess) return err;
  } else {
    LaunchExpertGemvs(p, s, vec, stream);
  }
  LaunchPdl(CombineKernel, p.num_tokens, 256, 0, stream, p, s);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
