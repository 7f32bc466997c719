#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/elementwise.cuh"

namespace tokenfab::cuda {
namespace {

__global__ void EmbeddingKernel(EmbeddingParams p) {
  const int t = blockIdx.x;
  const int32_t id = p.ids[t];
  __nv_bfloat16* out = p.out + static_cast<int64_t>(t) * p.hidden;
  if (id < 0 || id >= p.vocab) {  // rejected on the host; never read out of bounds here
    for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) out[i] = __float2bfloat16(0.0f);
    return;
  }
  const __nv_bfloat16* row = p.table + static_cast<int64_t>(id) * p.hidden;
  if (p.hidden % 8 == 0) {
    const Bf16x8* src = reinterpret_cast<const Bf16x8*>(row);
    Bf16x8* dst = reinterpret_cast<Bf16x8*>(out);
    for (int i = threadIdx.x; i < p.hidden / 8; i += blockDim.x) dst[i] = src[i];
  } else {
    for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) out[i] = row[i];
  }
}

// One block per row. Pass 1 (optionally) adds delta into the residual and sums squares of the
// stored (bf16-rounded) values; pass 2 normalises.
template <bool kAdd, bool kVec>
__global__ void RmsNormKernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * p.width;
  __nv_bfloat16* x = p.residual + base;
  float sum_sq = 0.0f;
  if constexpr (kVec) {
    Bf16x8* xv = reinterpret_cast<Bf16x8*>(x);
    for (int i = threadIdx.x; i < p.width / 8; i += blockDim.x) {
      float v[8];
      Unpack(xv[i], v);
      if constexpr (kAdd) {
        float d[8];
        Unpack(reinterpret_cast<const Bf16x8*>(p.delta + base)[i], d);
#pragma unroll
        for (int j = 0; j < 8; ++j) v[j] += d[j];
        const Bf16x8 packed = Pack(v);
        xv[i] = packed;
        Unpack(packed, v);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) sum_sq += v[j] * v[j];
    }
  } else {
    for (int i = threadIdx.x; i < p.width; i += blockDim.x) {
      float v = ToFloat(x[i]);
      if constexpr (kAdd) {
        const __nv_bfloat16 stored = __float2bfloat16(v + ToFloat(p.delta[base + i]));
        x[i] = stored;
        v = ToFloat(stored);
      }
      sum_sq += v * v;
    }
  }
  const float inv_rms = rsqrtf(BlockSum(sum_sq, scratch) / p.width + p.eps);
  __nv_bfloat16* out = p.out + base;
  if constexpr (kVec) {
    const Bf16x8* xv = reinterpret_cast<const Bf16x8*>(x);
    for (int i = threadIdx.x; i < p.width / 8; i += blockDim.x) {
      float v[8];
      Unpack(xv[i], v);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = p.weight[i * 8 + j] * (v[j] * inv_rms);
      reinterpret_cast<Bf16x8*>(out)[i] = Pack(v);
    }
  } else {
    for (int i = threadIdx.x; i < p.width; i += blockDim.x) {
      out[i] = __float2bfloat16(p.weight[i] * (ToFloat(x[i]) * inv_rms));
    }
  }
}

__global__ void SiluMulKernel(SiluMulParams p) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.width;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / p.width, i = idx % p.width;
    const __nv_bfloat16* row = p.in + r * 2 * p.width;
    const float g = ToFloat(row[i]), u = ToFloat(row[p.width + i]);
    p.out[idx] = __float2bfloat16(g / (1.0f + __expf(-g)) * u);
  }
}

__global__ void GatherRowsKernel(GatherRowsParams p) {
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
  EmbeddingKernel<<<p.num_tokens, 128, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  const bool vec = p.width % 8 == 0 && Aligned16(p.residual) && Aligned16(p.out) &&
                   (p.delta == nullptr || Aligned16(p.delta));
  const int threads = p.width >= 2048 ? 512 : 256;
  if (p.delta != nullptr) {
    if (vec) RmsNormKernel<true, true><<<p.rows, threads, 0, stream>>>(p);
    else RmsNormKernel<true, false><<<p.rows, threads, 0, stream>>>(p);
  } else {
    if (vec) RmsNormKernel<false, true><<<p.rows, threads, 0, stream>>>(p);
    else RmsNormKernel<false, false><<<p.rows, threads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

cudaError_t LaunchSiluMul(const SiluMulParams& p, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.width;
  if (n == 0) return cudaSuccess;
  SiluMulKernel<<<GridFor(n, 256), 256, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchGatherRows(const GatherRowsParams& p, cudaStream_t stream) {
  if (p.out_rows == 0) return cudaSuccess;
  GatherRowsKernel<<<p.out_rows, 128, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t LaunchAddBias(const AddBiasParams& p, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(p.rows) * p.cols;
  if (n == 0) return cudaSuccess;
  AddBiasKernel<<<GridFor(n, 256), 256, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
