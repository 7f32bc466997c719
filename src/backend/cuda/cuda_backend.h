// The CUDA backend: one GPU, one stream, bf16 weights / activations / KV cache with f32
// accumulation. Memory comes from a caching allocator; kernels live in *.cu beside this file,
// GEMMs go through cuBLASLt. Ops are asynchronous on the backend's stream; CopyToHost results
// are valid after Synchronize. Thread-safety: one thread drives it at a time.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/backend_registry.h"

namespace tokenfab {

class CudaOps;
class CublasLtGemm;
class DeviceAllocator;

class CudaBackend final : public Backend {
 public:
  static Result<std::unique_ptr<CudaBackend>> Create(int device);
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  DType activation_dtype() const override { return DType::kBF16; }
  DType WeightDType(DType /*stored*/) const override { return DType::kBF16; }

  Result<DeviceBuffer> Allocate(size_t bytes) override;
  uint64_t FreeMemoryBytes() const override;
  Status CopyToDevice(void* dst, const void* src, size_t bytes) override;
  Status CopyToHost(void* dst, const void* src, size_t bytes) override;
  Status Synchronize() override;
  Ops& ops() override;
  DeviceProbe* probe() override;
  bool SupportsGraphs() const override { return true; }
  std::vector<int64_t> WarmUpRowCounts(int64_t max_rows) const override;
  Status BeginGraphCapture() override;
  Result<int> EndGraphCapture() override;
  Status LaunchGraph(int graph) override;

  cudaStream_t stream() const { return stream_; }
  int device() const { return device_; }
  int num_sms() const { return num_sms_; }

 protected:
  void Free(void* data, size_t bytes) override;

 private:
  CudaBackend() = default;

  int device_ = 0;
  int num_sms_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<DeviceAllocator> allocator_;
  DeviceBuffer gemm_workspace_;
  std::unique_ptr<CublasLtGemm> gemm_;
  std::unique_ptr<CudaOps> ops_;
  std::unique_ptr<DeviceProbe> probe_;
  std::vector<cudaGraphExec_t> graphs_;
};

void RegisterCudaBackend();

}  // namespace tokenfab
