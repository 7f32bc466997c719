// Device helpers shared by the kernels: bf16 conversion, warp reductions, 16-byte vectors.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace tokenfab::cuda {

// Programmatic dependent launch. A kernel launched with LaunchPdl may be scheduled while the
// kernel before it in the stream is still draining, which hides the launch gap between the
// small kernels of a decode step (about ten per layer). Every such kernel calls
// WaitForPriorGrids() before its first global memory access: past it, the previous grid has
// finished and its writes are visible, exactly as with plain stream order. It then lets the
// next kernel be scheduled at once (its blocks take free slots and wait in turn), so at most one
// kernel runs ahead. TOKENFAB_NO_PDL=1 launches without the overlap.
__device__ __forceinline__ void WaitForPriorGrids() {
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

inline bool PdlEnabled() {
  static const bool enabled = std::getenv("TOKENFAB_NO_PDL") == nullptr;
  return enabled;
}

template <typename... Params, typename... Args>
void LaunchPdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
               const Args&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = PdlEnabled() ? 1 : 0;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attr;
  config.numAttrs = 1;
  cudaLaunchKernelEx(&config, kernel, args...);  // errors surface through cudaGetLastError
}

// Asks the copy engine to bring [p, p + bytes) into L2 without waiting for it (sm_90). p and
// bytes are multiples of 16. A hint: it changes no memory and nothing waits on it.
__device__ __forceinline__ void PrefetchL2(const void* p, int bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p), "r"(bytes) : "memory");
}

// Bytes of each prefetch unit (a weight row, or one K split of it) that a kernel may ask L2
// for before waiting on its predecessor: the units of the blocks that can be resident at once
// share half of L2, so early prefetches are not evicted before they are read. A multiple of 128
// bytes; 0 when even that does not fit. `kernel` launches with `threads` threads and `smem`
// bytes of dynamic shared memory, each block covering `units_per_block` units.
template <typename... Params>
int L2PrefetchBytes(void (*kernel)(Params...), int threads, size_t smem, int64_t units,
                    int unit_bytes, int units_per_block) {
  static int sms = 0, l2_bytes = 0;
  if (sms == 0) {
    int device = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device);
  }
  int blocks_per_sm = 0;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel, threads, smem);
  const int64_t resident = static_cast<int64_t>(std::max(1, sms * blocks_per_sm)) *
                           units_per_block;
  const int64_t concurrent = std::max<int64_t>(1, std::min(units, resident));
  const int64_t budget = static_cast<int64_t>(l2_bytes) / 2 / concurrent;
  return static_cast<int>(std::min<int64_t>(budget, unit_bytes) / 128 * 128);
}

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// Sum over the block; `scratch` holds at least 32 floats. Every thread gets the result.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? scratch[lane] : 0.0f;
  return WarpSum(v);
}

__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float ToFloat(float x) { return x; }

template <typename T>
__device__ __forceinline__ T FromFloat(float x);
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <>
__device__ __forceinline__ float FromFloat<float>(float x) {
  return x;
}

// x rounded to the nearest bf16, as a stored activation would be.
__device__ __forceinline__ float RoundBf16(float x) {
  return __bfloat162float(__float2bfloat16(x));
}

// silu(gate) * up: the formula of every kernel that gates an MLP (SiluMulKernel, the gated
// GEMV, the expert kernels, the projection chain), so that fused and unfused paths agree.
__device__ __forceinline__ float SiluMul(float gate, float up) {
  return gate / (1.0f + __expf(-gate)) * up;
}

// Eight bf16 values in one 16-byte load.
struct alignas(16) Bf16x8 {
  __nv_bfloat162 v[4];
};

__device__ __forceinline__ void Unpack(const Bf16x8& in, float out[8]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(in.v[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ Bf16x8 Pack(const float in[8]) {
  Bf16x8 out;
#pragma unroll
  for (int i = 0; i < 4; ++i) out.v[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
  return out;
}

// A 16-byte read-only load through the non-coherent (texture) path.
__device__ __forceinline__ Bf16x8 LoadReadOnly(const Bf16x8* p) {
  const int4 raw = __ldg(reinterpret_cast<const int4*>(p));
  Bf16x8 out;
  static_assert(sizeof(out) == sizeof(raw));
  memcpy(&out, &raw, sizeof(out));
  return out;
}

// Eight consecutive elements as floats, from bf16 (one 16-byte load) or f32 (two).
__device__ __forceinline__ void Load8(const __nv_bfloat16* p, float v[8]) {
  Unpack(*reinterpret_cast<const Bf16x8*>(p), v);
}
__device__ __forceinline__ void Load8(const float* p, float v[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}
__device__ __forceinline__ void Store8(__nv_bfloat16* p, const float v[8]) {
  *reinterpret_cast<Bf16x8*>(p) = Pack(v);
}
__device__ __forceinline__ void Store8(float* p, const float v[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

inline bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace tokenfab::cuda
