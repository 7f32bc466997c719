// Gemm through cuBLASLt: out[M, N] = x[M, K] @ w[N, K]^T with bf16 operands, f32 accumulation
// and a bf16 or f32 output. The algorithm is chosen once per (M, N, K, output type) by
// cuBLASLt's heuristic and cached, with a fixed workspace, so steady-state calls allocate
// nothing. Thread-safety: one thread (the backend's) at a time.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "base/status.h"

namespace tokenfab {

class CublasLtGemm {
 public:
  // `workspace` of `workspace_bytes` on the device, owned by the caller.
  static Result<std::unique_ptr<CublasLtGemm>> Create(void* workspace, size_t workspace_bytes);
  ~CublasLtGemm();

  // out = x w^T, or with accumulate (f32 out only) out += x w^T.
  Status Run(const void* x, const void* w, void* out, bool out_f32, int64_t m, int64_t n,
             int64_t k, cudaStream_t stream, bool accumulate = false);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo;
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, bool>;

  CublasLtGemm() = default;
  Result<Plan*> GetPlan(int64_t m, int64_t n, int64_t k, bool out_f32);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan> plans_;
};

}  // namespace tokenfab
