#include "backend/cuda/cublaslt_gemm.h"

#include "backend/cuda/cuda_util.h"

namespace tokenfab {

Result<std::unique_ptr<CublasLtGemm>> CublasLtGemm::Create(void* workspace,
                                                          size_t workspace_bytes) {
  std::unique_ptr<CublasLtGemm> gemm(new CublasLtGemm);
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&gemm->handle_));
  gemm->workspace_ = workspace;
  gemm->workspace_bytes_ = workspace_bytes;
  return gemm;
}

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, plan] : plans_) {
    cublasLtMatmulDescDestroy(plan.op);
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
  }
  if (handle_) cublasLtDestroy(handle_);
}

Result<CublasLtGemm::Plan*> CublasLtGemm::GetPlan(int64_t m, int64_t n, int64_t k,
                                                  bool out_f32) {
  const Key key{m, n, k, out_f32};
  auto it = plans_.find(key);
  if (it != plans_.end()) return &it->second;
  // Row-major out[M, N] = x[M, K] w[N, K]^T is column-major out^T[N, M] = w^T x^T:
  // A = w viewed as column-major [K, N] (transposed), B = x as column-major [K, M].
  Plan plan;
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
      plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, k, n, k));
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, k, m, k));
  TF_CUBLAS_RETURN_IF_ERROR(
      cublasLtMatrixLayoutCreate(&plan.c, out_f32 ? CUDA_R_32F : CUDA_R_16BF, n, m, n));
  cublasLtMatmulPreference_t pref;
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref));
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
      sizeof(workspace_bytes_)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle_, plan.op, plan.a, plan.b,
                                                          plan.c, plan.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatmulDescDestroy(plan.op);
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
    return InvalidArgumentError("cuBLASLt has no algorithm for a " + std::to_string(m) + "x" +
                                std::to_string(n) + "x" + std::to_string(k) + " bf16 GEMM");
  }
  plan.algo = result.algo;
  return &plans_.emplace(key, plan).first->second;
}

Status CublasLtGemm::Run(const void* x, const void* w, void* out, bool out_f32, int64_t m,
                         int64_t n, int64_t k, cudaStream_t stream, bool accumulate) {
  if (m == 0 || n == 0) return Status::Ok();
  TF_ASSIGN_OR_RETURN(Plan* plan, GetPlan(m, n, k, out_f32));
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, plan->op, &alpha, w, plan->a, x, plan->b,
                                           &beta, out, plan->c, out, plan->c, &plan->algo,
                                           workspace_, workspace_bytes_, stream));
  return Status::Ok();
}

}  // namespace tokenfab
