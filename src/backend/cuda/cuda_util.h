// Error handling for CUDA runtime and cuBLASLt calls: every call's result becomes a Status
// naming the call and the error, so a failing kernel surfaces as an Internal error, not a crash
// three calls later. Usable from .cc and .cu files.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "base/status.h"

namespace tokenfab {

inline Status CudaStatus(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return Status::Ok();
  const std::string message = std::string(what) + " failed at " + file + ":" +
                              std::to_string(line) + ": " + cudaGetErrorName(err) + " (" +
                              cudaGetErrorString(err) + ")";
  if (err == cudaErrorMemoryAllocation) return ResourceExhaustedError(message);
  return InternalError(message);
}

inline Status CublasStatus(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return InternalError(std::string(what) + " failed at " + file + ":" + std::to_string(line) +
                       ": cuBLAS status " + std::to_string(static_cast<int>(s)));
}

}  // namespace tokenfab

#define TF_CUDA_RETURN_IF_ERROR(call) \
  TF_RETURN_IF_ERROR(::tokenfab::CudaStatus((call), #call, __FILE__, __LINE__))
#define TF_CUBLAS_RETURN_IF_ERROR(call) \
  TF_RETURN_IF_ERROR(::tokenfab::CublasStatus((call), #call, __FILE__, __LINE__))
// After a kernel launch: launch-configuration errors are reported at once.
#define TF_CUDA_RETURN_IF_LAUNCH_ERROR() TF_CUDA_RETURN_IF_ERROR(cudaPeekAtLastError())
