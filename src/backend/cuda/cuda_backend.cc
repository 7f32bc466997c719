#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <string>

#include "backend/cuda/cublaslt_gemm.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/cuda_probe.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/device_allocator.h"

namespace tokenfab {

Result<std::unique_ptr<CudaBackend>> CudaBackend::Create(int device) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    return UnavailableError("no CUDA device available" +
                            std::string(err != cudaSuccess ? std::string(" (") +
                                                                 cudaGetErrorString(err) + ")"
                                                           : ""));
  }
  if (device < 0 || device >= count) {
    return InvalidArgumentError("CUDA device " + std::to_string(device) + " does not exist (" +
                                std::to_string(count) + " present)");
  }
  std::unique_ptr<CudaBackend> b(new CudaBackend);
  b->device_ = device;
  TF_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  cudaDeviceProp prop{};
  TF_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, device));
  if (prop.major < 8) {
    return UnavailableError(std::string("GPU ") + prop.name + " lacks bf16 tensor cores (sm_" +
                            std::to_string(prop.major * 10 + prop.minor) + "); needs sm_80+");
  }
  b->num_sms_ = prop.multiProcessorCount;
  TF_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking));
  b->allocator_ = std::make_unique<DeviceAllocator>(device);
  constexpr size_t kGemmWorkspace = 32 << 20;
  TF_ASSIGN_OR_RETURN(b->gemm_workspace_, b->Allocate(kGemmWorkspace));
  TF_ASSIGN_OR_RETURN(b->gemm_, CublasLtGemm::Create(b->gemm_workspace_.data(), kGemmWorkspace));
  b->ops_ = std::make_unique<CudaOps>(b.get(), b->gemm_.get());
  return b;
}

CudaBackend::~CudaBackend() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (cudaGraphExec_t g : graphs_) cudaGraphExecDestroy(g);
  probe_.reset();
  ops_.reset();
  gemm_.reset();
  gemm_workspace_.Reset();
  allocator_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

Ops& CudaBackend::ops() { return *ops_; }

DeviceProbe* CudaBackend::probe() {
  if (!probe_) probe_ = std::make_unique<CudaProbe>(this, gemm_.get());
  return probe_.get();
}

Result<DeviceBuffer> CudaBackend::Allocate(size_t bytes) {
  TF_ASSIGN_OR_RETURN(void* ptr, allocator_->Allocate(bytes));
  return DeviceBuffer(this, ptr, bytes);
}

void CudaBackend::Free(void* data, size_t /*bytes*/) {
  // Work queued on the stream may still read the block: wait before it can be reused.
  cudaStreamSynchronize(stream_);
  allocator_->Free(data);
}

uint64_t CudaBackend::FreeMemoryBytes() const {
  size_t free_bytes = 0, total = 0;
  if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return free_bytes + allocator_->bytes_cached();
}

Status CudaBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  TF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  return Status::Ok();
}

Status CudaBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  TF_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  return Status::Ok();
}

Status CudaBackend::Synchronize() {
  TF_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return Status::Ok();
}

Status CudaBackend::BeginGraphCapture() {
  TF_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  return Status::Ok();
}

Result<int> CudaBackend::EndGraphCapture() {
  cudaGraph_t graph = nullptr;
  TF_CUDA_RETURN_IF_ERROR(cudaStreamEndCapture(stream_, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  TF_CUDA_RETURN_IF_ERROR(err);
  graphs_.push_back(exec);
  return static_cast<int>(graphs_.size()) - 1;
}

std::vector<int64_t> CudaBackend::WarmUpRowCounts(int64_t max_rows) const {
  // The largest count of each cuBLASLt row bucket, then max_rows for the bucket it falls in.
  std::vector<int64_t> counts;
  for (int64_t m = 1; m <= max_rows; m = GemmRowBucket(m) + 1) {
    counts.push_back(std::min(GemmRowBucket(m), max_rows));
  }
  return counts;
}

Status CudaBackend::LaunchGraph(int graph) {
  if (graph < 0 || graph >= static_cast<int>(graphs_.size())) {
    return InvalidArgumentError("unknown graph " + std::to_string(graph));
  }
  TF_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graphs_[graph], stream_));
  return Status::Ok();
}

void RegisterCudaBackend() {
  RegisterBackend("cuda", [](const BackendOptions& options) -> Result<std::unique_ptr<Backend>> {
    TF_ASSIGN_OR_RETURN(auto backend, CudaBackend::Create(options.device_index));
    return std::unique_ptr<Backend>(std::move(backend));
  });
}

}  // namespace tokenfab
