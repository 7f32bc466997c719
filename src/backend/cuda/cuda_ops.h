// CudaOps: the CUDA implementation of backend/ops.h. Validates arguments with the shared
// op_checks, then launches the kernels of attention.cu, elementwise.cu, moe.cu and qkv.cu or a
// cuBLASLt GEMM on the backend's stream. Ops needing scratch (split attention, MoE) take it
// from a buffer that only grows, so steady-state steps allocate nothing.
#pragma once

#include "backend/ops.h"
#include "backend/cuda/cublaslt_gemm.h"
#include <vector>

#include "backend/device_buffer.h"

namespace tokenfab {

class CudaBackend;

class CudaOps final : public Ops {
 public:
  CudaOps(CudaBackend* backend, CublasLtGemm* gemm) : backend_(backend), gemm_(gemm) {}

  Status Embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override;
  Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override;
  Status AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight, float eps,
                    const Tensor& out) override;
  Status MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) override;
  Status PrepareQkv(const QkvArgs& args, const AttentionMetadata& meta) override;
  Status Attention(const AttentionArgs& args, const AttentionMetadata& meta) override;
  Status SiluMul(const Tensor& in, const Tensor& out) override;
  Status MoeRoute(const Tensor& logits, bool normalize, const Tensor& ids,
                  const Tensor& weights) override;
  Status MoeExperts(const MoeArgs& args) override;
  Status GatherRows(const Tensor& in, const Tensor& indices, const Tensor& out) override;
  Status Sample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                const Tensor& logprobs) override;

 private:
  Result<void*> Scratch(size_t bytes);

  CudaBackend* backend_;
  CublasLtGemm* gemm_;
  DeviceBuffer scratch_;
  std::vector<DeviceBuffer> retired_scratch_;  // outgrown scratch that graphs may still use
};

}  // namespace tokenfab
