// Gemm through cuBLASLt: out[M, N] = x[M, K] @ w[N, K]^T with bf16 operands, f32 accumulation
// and a bf16 or f32 output. The algorithm is chosen per shape by timing: the first time a
// shape's row count falls into a new bucket (GemmRowBucket) outside graph capture, each of
// cuBLASLt's heuristic candidates runs on the call's own operands and the fastest is kept for
// the bucket. cuBLASLt's first guess is often not its best for the skinny row counts of
// batched decode and of short prefill chunks. Steady-state calls allocate nothing (a fixed
// workspace). Thread-safety: one thread (the backend's) at a time.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "base/status.h"

namespace tokenfab {

// The bucket of row counts that share one timed algorithm choice: the smallest of 1, 2, 3, 4,
// 6, 8, 12, 16, ... 64 (powers of two and 1.5 times them), then every multiple of 32 up to
// 1024, then 1536, 2048, 3072, ... again, that is >= m.
int64_t GemmRowBucket(int64_t m);

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
  // (m or its bucket, n, k, out_f32, accumulate)
  using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool>;
  struct Operands {
    const void* x;
    const void* w;
    void* out;
    cudaStream_t stream;
  };

  CublasLtGemm() = default;
  Result<Plan*> GetPlan(const Key& key, const Operands& operands);
  Result<std::vector<cublasLtMatmulAlgo_t>> Candidates(const Plan& plan);
  // The fastest candidate on these operands (out is restored afterwards when accumulating),
  // or candidates[0] when timing is impossible (the stream is being captured, no memory).
  Result<cublasLtMatmulAlgo_t> Fastest(const Plan& plan, const Key& key,
                                       const std::vector<cublasLtMatmulAlgo_t>& candidates,
                                       const Operands& operands, bool* timed);
  cublasStatus_t Launch(const Plan& plan, const cublasLtMatmulAlgo_t& algo, bool accumulate,
                        const Operands& operands);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan> plans_;                   // by exact m
  std::map<Key, cublasLtMatmulAlgo_t> tuned_;  // by m's bucket
};

}  // namespace tokenfab
