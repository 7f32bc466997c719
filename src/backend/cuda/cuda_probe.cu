#include <algorithm>
#include <string>
#include <vector>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/cublaslt_gemm.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_probe.h"
#include "backend/cuda/cuda_util.h"

namespace tokenfab {
namespace {

// Sums 16-byte vectors with four loads in flight per thread; the sum is written so the loads
// cannot be optimised away.
__global__ void ReadKernel(const int4* data, int64_t n, int* sink) {
  int acc = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const int4 a = data[i], b = data[i + stride], c = data[i + 2 * stride],
               d = data[i + 3 * stride];
    acc ^= a.x ^ a.w ^ b.y ^ b.z ^ c.x ^ c.w ^ d.y ^ d.z;
  }
  for (; i < n; i += stride) acc ^= data[i].x;
  if (acc == 0x12345678) *sink = acc;
}

__global__ void FillRandomBf16(__nv_bfloat16* data, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    data[i] = __float2bfloat16((static_cast<float>(x & 0xffff) / 65536.0f - 0.5f));
  }
}

template <typename Fn>
Result<float> MedianMs(cudaStream_t stream, int reps, Fn fn) {
  cudaEvent_t start, stop;
  TF_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start));
  TF_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop));
  TF_RETURN_IF_ERROR(fn());  // warm-up
  std::vector<float> times;
  for (int r = 0; r < reps; ++r) {
    TF_CUDA_RETURN_IF_ERROR(cudaEventRecord(start, stream));
    TF_RETURN_IF_ERROR(fn());
    TF_CUDA_RETURN_IF_ERROR(cudaEventRecord(stop, stream));
    TF_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop));
    float ms = 0;
    TF_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

Result<DeviceCeilings> CudaProbe::MeasureCeilings() {
  DeviceCeilings c;
  cudaDeviceProp prop{};
  TF_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, backend_->device()));
  c.device_name = prop.name;
  c.matmul_dtype = "bf16";
  const cudaStream_t stream = backend_->stream();
  // Two buffers of up to 4 GiB each, far past the L2, in what the weights and the KV cache left
  // (the engine holds most of the memory by the time bench-engine measures, unless
  // --kv-cache-gb kept it small); the GEMM below needs 256 MiB of each.
  constexpr size_t kMaxBytes = 4ull << 30, kMinBytes = 512ull << 20, kGrain = 256ull << 20;
  const uint64_t spare = backend_->FreeMemoryBytes();
  const size_t bytes =
      std::min<size_t>(kMaxBytes, spare > kGrain ? (spare - kGrain) / 2 / kGrain * kGrain : 0);
  if (bytes < kMinBytes) {
    return ResourceExhaustedError(
        "cuda: " + std::to_string(spare >> 20) +
        " MiB free is too little to measure the ceilings (needs 1.25 GiB; "
        "lower --kv-cache-gb or pass --no-ceilings)");
  }
  TF_ASSIGN_OR_RETURN(DeviceBuffer a, backend_->Allocate(bytes));
  TF_ASSIGN_OR_RETURN(DeviceBuffer b, backend_->Allocate(bytes));
  TF_ASSIGN_OR_RETURN(DeviceBuffer sink, backend_->Allocate(sizeof(int)));
  FillRandomBf16<<<4 * prop.multiProcessorCount, 256, 0, stream>>>(
      static_cast<__nv_bfloat16*>(a.data()), bytes / 2, 1);
  TF_CUDA_RETURN_IF_LAUNCH_ERROR();

  const int64_t vectors = bytes / sizeof(int4);
  TF_ASSIGN_OR_RETURN(const float read_ms, MedianMs(stream, 10, [&]() -> Status {
    ReadKernel<<<8 * prop.multiProcessorCount, 512, 0, stream>>>(
        static_cast<const int4*>(a.data()), vectors, static_cast<int*>(sink.data()));
    TF_CUDA_RETURN_IF_LAUNCH_ERROR();
    return Status::Ok();
  }));
  c.read_gb_per_s = bytes / (read_ms * 1e-3) / 1e9;

  TF_ASSIGN_OR_RETURN(const float copy_ms, MedianMs(stream, 10, [&]() -> Status {
    TF_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, stream));
    return Status::Ok();
  }));
  c.copy_gb_per_s = 2.0 * bytes / (copy_ms * 1e-3) / 1e9;

  constexpr int64_t kDim = 8192;  // x, w and out each 128 MiB of bf16, inside a and b
  char* base_a = static_cast<char*>(a.data());
  char* base_b = static_cast<char*>(b.data());
  TF_ASSIGN_OR_RETURN(const float gemm_ms, MedianMs(stream, 10, [&]() -> Status {
    return gemm_->Run(base_a, base_a + kDim * kDim * 2, base_b, /*out_f32=*/false, kDim, kDim,
                      kDim, stream);
  }));
  c.matmul_tflops = 2.0 * kDim * kDim * kDim / (gemm_ms * 1e-3) / 1e12;
  TF_RETURN_IF_ERROR(backend_->Synchronize());
  return c;
}

}  // namespace tokenfab
