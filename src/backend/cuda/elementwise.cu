#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/elementwise.cuh"

namespace tokenfab::cuda {
namespace {

template <typename OutT>
__global__ void EmbeddingKernel(EmbeddingParams p) {
  WaitForPriorGrids();
  const int t = blockIdx.x;
  const int32_t id = p.ids[t];
  OutT* out = static_cast<OutT*>(p.out) + static_cast<int64_t>(t) * p.hidden;
  if (id < 0 || id >= p.vocab) {  // rejected on the host; never read out of bounds here
    for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) out[i] = FromFloat<OutT>(0.0f);
    return;
  }
  const __nv_bfloat16* row = p.table + static_cast<int64_t>(id) * p.hidden;
  for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) out[i] = FromFloat<OutT>(ToFloat(row[i]));
}

// One block per row: sum the squares of the row, then normalise it. The input (the f32
// residual stream, or act) is read twice; the second read hits L1/L2, except for each thread's
// first eight values, which stay in registers. Those eight weights are loaded before waiting
// for the kernel before (weights are constant during a forward), so for rows of up to eight
// values a thread (4096 at 512 threads) only the row's read follows the wait.
template <typename InT, typename OutT, bool kVec>
__global__ void RmsNormKernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * p.width;
  const InT* x = static_cast<const InT*>(p.x) + base;
  OutT* out = static_cast<OutT*>(p.out) + base;
  float sum_sq = 0.0f;
  if constexpr (kVec) {
    const int i0 = threadIdx.x * 8;
    float w0[8], v0[8];
    if (i0 < p.width) Load8(p.weight + i0, w0);
    WaitForPriorGrids();
    if (i0 < p.width) {
      Load8(x + i0, v0);
#pragma unroll
      for (int j = 0; j < 8; ++j) sum_sq += v0[j] * v0[j];
    }
    for (int i = i0 + blockDim.x * 8; i < p.width; i += blockDim.x * 8) {
      float v[8];
      Load8(x + i, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) sum_sq += v[j] * v[j];
    }
    const float inv_rms = rsqrtf(BlockSum(sum_sq, scratch) / p.width + p.eps);
    if (i0 < p.width) {
#pragma unroll
      for (int j = 0; j < 8; ++j) v0[j] = w0[j] * (v0[j] * inv_rms);
      Store8(out + i0, v0);
    }
    for (int i = i0 + blockDim.x * 8; i < p.width; i += blockDim.x * 8) {
      float v[8];
      Load8(x + i, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = p.weight[i + j] * (v[j] * inv_rms);
      Store8(out + i, v);
    }
  } else {
    WaitForPriorGrids();
    for (int i = threadIdx.x; i < p.width; i += blockDim.x) {
      const float v = ToFloat(x[i]);
      sum_sq += v * v;
    }
    const float inv_rms = rsqrtf(BlockSum(sum_sq, scratch) / p.width + p.eps);
    for (int i = threadIdx.x; i < p.width; i += blockDim.x) {
      out[i] = FromFloat<OutT>(p.weight[i] * (ToFloat(x[i]) * inv_rms));
    }
  }
}

// Block (row of x, strip of `warps` outputs): x's row is staged in shared memory and each warp
// computes one output as a dot product with a bf16 weight row.
__global__ void MatMulF32Kernel(MatMulF32Params p) {
  WaitForPriorGrids();
  extern __shared__ float x_s[];
  const int row = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int i = threadIdx.x; i < p.k; i += blockDim.x) x_s[i] = p.x[static_cast<int64_t>(row) * p.k + i];
  __syncthreads();
  {
    const int n = blockIdx.y * warps + warp;
    if (n >= p.n) return;
    const __nv_bfloat16* w = p.w + static_cast<int64_t>(n) * p.k;
    float acc = 0.0f;
    for (int i = lane; i < p.k; i += 32) acc += x_s[i] * ToFloat(w[i]);
    acc = WarpSum(acc);
    if (lane == 0) {
      const int64_t o = static_cast<int64_t>(row) * p.n + n;
      if (p.out_f32) static_cast<float*>(p.out)[o] = acc;
      else static_cast<__nv_bfloat16*>(p.out)[o] = __float2bfloat16(acc);
    }
  }
}

template <bool kVec>
__global__ void SiluMulKernel(SiluMulParams p) {
  WaitForPriorGrids();
  constexpr int kW = kVec ? 8 : 1;  // elements per thread step
  const int per_row = p.width / kW;
  const int64_t n = static_cast<int64_t>(p.rows) * per_row;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / per_row, c = (idx % per_row) * kW;
    const __nv_bfloat16* gate = p.in + r * 2 * p.width + c;
    const __nv_bfloat16* up = gate + p.width;
    __nv_bfloat16* out = p.out + r * p.width + c;
    if constexpr (kVec) {
      float g[8], u[8], o[8];
      Unpack(*reinterpret_cast<const Bf16x8*>(gate), g);
      Unpack(*reinterpret_cast<const Bf16x8*>(up), u);
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] = SiluMul(g[i], u[i]);
      *reinterpret_cast<Bf16x8*>(out) = Pack(o);
    } else {
      const float g = ToFloat(*gate), u = ToFloat(*up);
      *out = __float2bfloat16(SiluMul(g, u));
    }
  }
}

__global__ void GatherRowsKernel(GatherRowsParams p) {
  WaitForPriorGrids();
  const int r = blockIdx.x;
  const int32_t src_row = p.indices[r];
  if (src_row < 0 || src_row >= p.in_rows) return;
  const char* src = static_cast<const char*>(p.in) + static_cast<int64_t>(src_row) * p.row_bytes;
  char* dst = static_cast<char*>(p.out) + static_cast<int64_t>(r) * p.row_bytes;
  if (p.row_bytes % 16 == 0) {
    for (int i = threadIdx.x; i < p.row_bytes / 16; i += blockDim.x) {
      reinterpret_cast<int4*>(dst)[i] = reinterpret_cast<const int4*>(src)[i];
    }
  } else {
    for (int i = threadIdx.x; i < p.row_bytes; i += blockDim.x) dst[i] = src[i];
  }
}

__global__ void AddBiasKernel(AddBiasParams p) {
  WaitForPriorGrids();
  const int64_t n = static_cast<int64_t>(p.rows) * p.cols;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float b = p.bias[idx % p.cols];
    if (p.out_is_f32) {
      static_cast<float*>(p.out)[idx] += b;
    } else {
      __nv_bfloat16* o = static_cast<__nv_bfloat16*>(p.out) + idx;
      *o = __float2bfloat16(ToFloat(*o) + b);
    }
  }
}

int GridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

}  // namespace

cudaError_t LaunchEmbedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  if (p.out_f32) LaunchPdl(EmbeddingKernel<float>, p.num_tokens, 128, 0, stream, p);
  else LaunchPdl(EmbeddingKernel<__nv_bfloat16>, p.num_tokens, 128, 0, stream, p);
  return cudaGetLastError();
}

template <typename InT, typename OutT>
void LaunchRmsNormTyped(const RmsNormParams& p, bool vec, int threads, cudaStream_t stream) {
  if (vec) LaunchPdl(RmsNormKernel<InT, OutT, true>, p.rows, threads, 0, stream, p);
  else LaunchPdl(RmsNormKernel<InT, OutT, false>, p.rows, threads, 0, stream, p);
}

cudaError_t LaunchRmsNorm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  const bool vec = p.width % 8 == 0 && Aligned16(p.x) && Aligned16(p.out) && Aligned16(p.weight);
  const int threads = p.width >= 4096 ? 512 : 256;
  if (p.x_f32) {
    if (p.out_f32) LaunchRmsNormTyped<float, float>(p, vec, threads, stream);
    else LaunchRmsNormTyped<float, __nv_bfloat16>(p, vec, threads, stream);
  } else {
    if (p.out_f32) LaunchRmsNormTyped<__nv_bfloat16, float>(p, vec, threads, stream);
    else LaunchRmsNormTyped<__nv_bfloat16, __nv_bfloat16>(p, vec, threads, stream);
  }
  return cudaGetLastError();
}

cudaError_t LaunchMatMulF32(const MatMulF32Params& p, cudaStream_t stream) {
  if (p.m == 0 || p.n == 0) return cudaSuccess;
  const size_t smem = sizeof(float) * p.k;
  cudaFuncSetAttribute(MatMulF32Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(smem));
  constexpr int kThreads = 256;
  const dim3 grid(p.m, (p.n + kThreads / 32 - 1) / (kThreads / 32));
  LaunchPdl(MatMulF32Kernel, grid, kThreads, smem, stream, p);
  return cudaGetLastError();
}

cudaError_t LaunchSiluMul(const SiluMulParams& p, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.width;
  if (n == 0) return cudaSuccess;
  if (p.width % 8 == 0 && Aligned16(p.in) && Aligned16(p.out)) {
    LaunchPdl(SiluMulKernel<true>, GridFor(n / 8, 256), 256, 0, stream, p);
  } else {
    LaunchPdl(SiluMulKernel<false>, GridFor(n, 256), 256, 0, stream, p);
  }
  return cudaGetLastError();
}

cudaError_t LaunchGatherRows(const GatherRowsParams& p, cudaStream_t stream) {
  if (p.out_rows == 0) return cudaSuccess;
  LaunchPdl(GatherRowsKernel, p.out_rows, 128, 0, stream, p);
  return cudaGetLastError();
}

cudaError_t LaunchAddBias(const AddBiasParams& p, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.cols;
  if (n == 0) return cudaSuccess;
  LaunchPdl(AddBiasKernel, GridFor(n, 256), 256, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
