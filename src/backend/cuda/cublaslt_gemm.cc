#include "backend/cuda/cublaslt_gemm.h"

#include <algorithm>
#include <limits>

#include "backend/cuda/cuda_util.h"

namespace tokenfab {
namespace {

// How many of cuBLASLt's heuristic candidates are timed, and how: one untimed run, then
// several, each after the L2 cache is overwritten, since in a forward pass every layer's
// weights come from HBM (timed back to back, a small weight matrix stays in L2 and the
// ranking favours kernels that are fast on cached operands). Another candidate replaces the
// heuristic's first only when it is kMinGain faster: timing noise alone should not flip it.
constexpr int kCandidates = 8;
constexpr int kTimedRuns = 3;
constexpr float kMinGain = 0.03f;

void Destroy(cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
             cublasLtMatrixLayout_t c) {
  if (op) cublasLtMatmulDescDestroy(op);
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (c) cublasLtMatrixLayoutDestroy(c);
}

// Events, a saved copy of the output and the buffer that flushes L2, for one timing; released
// on every path.
struct TimingResources {
  cudaEvent_t start = nullptr, stop = nullptr;
  void* saved = nullptr;
  void* flush = nullptr;
  size_t flush_bytes = 0;
  ~TimingResources() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (saved) cudaFree(saved);
    if (flush) cudaFree(flush);
  }
};

// A device buffer of `bytes`, or null (and the error cleared) when there is no memory for it.
void* TryMalloc(size_t bytes) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) == cudaSuccess) return p;
  cudaGetLastError();
  return nullptr;
}

}  // namespace

int64_t GemmRowBucket(int64_t m) {
  // Mixed steps (a decode batch beside a prompt chunk) land anywhere between 64 and 1024 rows,
  // and there one choice does not carry over a 1.5x bucket: the algorithm timed at 302 rows
  // took 17.3 ms a step at 320 rows against 12.4 ms for the one timed at 320 (H100, Llama-3.1-8B,
  // 64 decodes + 256 prompt tokens).
  constexpr int64_t kFineFrom = 64, kFineTo = 1024, kFineStep = 32;
  if (m > kFineFrom && m <= kFineTo) return (m + kFineStep - 1) / kFineStep * kFineStep;
  int64_t power = 1;
  while (true) {
    if (m <= power) return power;
    if (power >= 2 && m <= power + power / 2) return power + power / 2;
    power *= 2;
  }
}

Result<std::unique_ptr<CublasLtGemm>> CublasLtGemm::Create(void* workspace,
                                                          size_t workspace_bytes) {
  std::unique_ptr<CublasLtGemm> gemm(new CublasLtGemm);
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&gemm->handle_));
  gemm->workspace_ = workspace;
  gemm->workspace_bytes_ = workspace_bytes;
  return gemm;
}

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, plan] : plans_) Destroy(plan.op, plan.a, plan.b, plan.c);
  if (handle_) cublasLtDestroy(handle_);
}

Result<std::vector<cublasLtMatmulAlgo_t>> CublasLtGemm::Candidates(const Plan& plan) {
  cublasLtMatmulPreference_t pref;
  TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref));
  const cublasStatus_t set = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
      sizeof(workspace_bytes_));
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  const cublasStatus_t s =
      set != CUBLAS_STATUS_SUCCESS
          ? set
          : cublasLtMatmulAlgoGetHeuristic(handle_, plan.op, plan.a, plan.b, plan.c, plan.c,
                                           pref, kCandidates, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  std::vector<cublasLtMatmulAlgo_t> algos;
  if (s != CUBLAS_STATUS_SUCCESS) return algos;
  for (int i = 0; i < found; ++i) {
    if (results[i].state == CUBLAS_STATUS_SUCCESS) algos.push_back(results[i].algo);
  }
  return algos;
}

cublasStatus_t CublasLtGemm::Launch(const Plan& plan, const cublasLtMatmulAlgo_t& algo,
                                    bool accumulate, const Operands& o) {
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  return cublasLtMatmul(handle_, plan.op, &alpha, o.w, plan.a, o.x, plan.b, &beta, o.out,
                        plan.c, o.out, plan.c, &algo, workspace_, workspace_bytes_, o.stream);
}

Result<cublasLtMatmulAlgo_t> CublasLtGemm::Fastest(
    const Plan& plan, const Key& key, const std::vector<cublasLtMatmulAlgo_t>& candidates,
    const Operands& o, bool* timed) {
  *timed = false;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  TF_CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(o.stream, &capture));
  if (candidates.size() < 2 || capture != cudaStreamCaptureStatusNone) return candidates[0];
  const auto [m, n, k, out_f32, accumulate] = key;
  TimingResources r;
  int device = 0, l2_bytes = 0;
  TF_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  TF_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  r.flush_bytes = 2 * static_cast<size_t>(l2_bytes);
  r.flush = TryMalloc(r.flush_bytes);
  const size_t out_bytes = static_cast<size_t>(m * n) * (out_f32 ? 4 : 2);
  // The timed runs add into out again and again: keep its contents.
  if (accumulate) r.saved = TryMalloc(out_bytes);
  if (!r.flush || (accumulate && !r.saved)) return candidates[0];  // no timing, the first guess
  if (accumulate) {
    TF_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(r.saved, o.out, out_bytes, cudaMemcpyDeviceToDevice, o.stream));
  }
  TF_CUDA_RETURN_IF_ERROR(cudaEventCreate(&r.start));
  TF_CUDA_RETURN_IF_ERROR(cudaEventCreate(&r.stop));
  std::vector<float> ms(candidates.size(), std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (Launch(plan, candidates[i], accumulate, o) != CUBLAS_STATUS_SUCCESS) continue;
    float total = 0;
    for (int run = 0; run < kTimedRuns; ++run) {
      TF_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(r.flush, run, r.flush_bytes, o.stream));
      TF_CUDA_RETURN_IF_ERROR(cudaEventRecord(r.start, o.stream));
      const cublasStatus_t launched = Launch(plan, candidates[i], accumulate, o);
      TF_CUDA_RETURN_IF_ERROR(cudaEventRecord(r.stop, o.stream));
      TF_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(r.stop));
      float run_ms = 0;
      TF_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&run_ms, r.start, r.stop));
      total = launched == CUBLAS_STATUS_SUCCESS ? total + run_ms
                                                : std::numeric_limits<float>::infinity();
    }
    ms[i] = total;
  }
  size_t best = 0;
  for (size_t i = 1; i < candidates.size(); ++i) {
    if (ms[i] < ms[best] && ms[i] < (1 - kMinGain) * ms[0]) best = i;
  }
  if (accumulate) {
    TF_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(o.out, r.saved, out_bytes, cudaMemcpyDeviceToDevice, o.stream));
    TF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(o.stream));  // before r.saved is freed
  }
  *timed = true;
  return candidates[best];
}

Result<CublasLtGemm::Plan*> CublasLtGemm::GetPlan(const Key& key, const Operands& operands) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return &it->second;
  const auto [m, n, k, out_f32, accumulate] = key;
  // Row-major out[M, N] = x[M, K] w[N, K]^T is column-major out^T[N, M] = w^T x^T:
  // A = w viewed as column-major [K, N] (transposed), B = x as column-major [K, M].
  Plan plan;
  auto created = [&]() -> Status {
    TF_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
    TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(
        plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
    TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, k, n, k));
    TF_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, k, m, k));
    TF_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatrixLayoutCreate(&plan.c, out_f32 ? CUDA_R_32F : CUDA_R_16BF, n, m, n));
    // This bucket's timed choice, where cuBLASLt accepts it for this m.
    const Key bucket{GemmRowBucket(m), n, k, out_f32, accumulate};
    const auto chosen = tuned_.find(bucket);
    cublasLtMatmulHeuristicResult_t check{};
    if (chosen != tuned_.end() &&
        cublasLtMatmulAlgoCheck(handle_, plan.op, plan.a, plan.b, plan.c, plan.c,
                                &chosen->second, &check) == CUBLAS_STATUS_SUCCESS &&
        check.workspaceSize <= workspace_bytes_) {
      plan.algo = chosen->second;
      return Status::Ok();
    }
    TF_ASSIGN_OR_RETURN(const std::vector<cublasLtMatmulAlgo_t> candidates, Candidates(plan));
    if (candidates.empty()) {
      return InvalidArgumentError("cuBLASLt has no algorithm for a " + std::to_string(m) +
                                  "x" + std::to_string(n) + "x" + std::to_string(k) +
                                  " bf16 GEMM");
    }
    bool timed = false;
    TF_ASSIGN_OR_RETURN(plan.algo, Fastest(plan, key, candidates, operands, &timed));
    if (timed) tuned_[bucket] = plan.algo;
    return Status::Ok();
  };
  const Status s = created();
  if (!s.ok()) {
    Destroy(plan.op, plan.a, plan.b, plan.c);
    return s;
  }
  return &plans_.emplace(key, plan).first->second;
}

Status CublasLtGemm::Run(const void* x, const void* w, void* out, bool out_f32, int64_t m,
                         int64_t n, int64_t k, cudaStream_t stream, bool accumulate) {
  if (m == 0 || n == 0) return Status::Ok();
  const Operands operands{x, w, out, stream};
  TF_ASSIGN_OR_RETURN(Plan* plan, GetPlan(Key{m, n, k, out_f32, accumulate}, operands));
  TF_CUBLAS_RETURN_IF_ERROR(Launch(*plan, plan->algo, accumulate, operands));
  return Status::Ok();
}

}  // namespace tokenfab
