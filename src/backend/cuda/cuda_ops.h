// CudaOps: the CUDA implementation of backend/ops.h. Validates arguments with the shared
// op_checks, then launches the kernels of attention.cu, elementwise.cu, moe.cu and qkv.cu or a
// cuBLASLt GEMM on the backend's stream. Ops needing scratch (split attention, MoE) take it
// from a buffer that only grows, so steady-state steps allocate nothing.
#pragma once

#include <vector>

#include "backend/cuda/cublaslt_gemm.h"
#include "backend/cuda/gemv.cuh"
#include "backend/device_buffer.h"
#include "backend/ops.h"

namespace tokenfab {

class CudaBackend;

class CudaOps final : public Ops {
 public:
  CudaOps(CudaBackend* backend, CublasLtGemm* gemm) : backend_(backend), gemm_(gemm) {}

  Status Embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override;
  Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override;
  Status MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) override;
  Status NormMatMul(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w,
                    const Tensor& bias, bool gated, const Tensor& out) override;
  Status MatMulAdd(const Tensor& x, const Tensor& w, const Tensor& bias,
                   const Tensor& residual) override;
  Status ProjectionChain(const ProjectionStage* stages, int count) override;
  Status PrepareQkv(const QkvArgs& args, const AttentionMetadata& meta) override;
  Status Attention(const AttentionArgs& args, const AttentionMetadata& meta) override;
  Status MoeRoute(const Tensor& logits, bool normalize, const Tensor& ids,
                  const Tensor& weights) override;
  Status MoeExperts(const MoeArgs& args) override;
  Status MoeBlock(const MoeBlockArgs& args) override;
  Status GatherRows(const Tensor& in, const Tensor& indices, const Tensor& out) override;
  Status Sample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                const Tensor& logprobs) override;

 private:
  Result<void*> Scratch(size_t bytes);
  // Intermediates of the fused ops (the normalised or gated input of a projection).
  Result<Tensor> Intermediate(DType dtype, int64_t rows, int64_t cols);
  // `count` zeroed ints in `buffer` that kernels leave zeroed (tickets of "the last block to
  // finish" kernels); each user has its own buffer.
  Result<int*> Counters(DeviceBuffer* buffer, int64_t count);
  Status Gemm(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
              bool accumulate);
  // The skinny-GEMV launch of Gemm's product (whether it applies: cuda::GemvSupports).
  static cuda::GemvParams GemvFor(const Tensor& x, const Tensor& w, const Tensor& bias,
                                  const Tensor& out, bool accumulate);

  CudaBackend* backend_;
  CublasLtGemm* gemm_;
  DeviceBuffer scratch_;
  DeviceBuffer intermediate_;  // separate from scratch_: an op may need both
  DeviceBuffer split_counters_;  // split attention: one ticket per (token, KV head)
  DeviceBuffer moe_ticket_;      // the small-batch MoE router's
  DeviceBuffer chain_counters_;  // the projection chain's stage counters
  std::vector<DeviceBuffer> retired_scratch_;  // outgrown buffers that graphs may still use
};

}  // namespace tokenfab
