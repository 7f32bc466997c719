#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_ops.h"

namespace tokenfab {

CpuBackend::CpuBackend(int num_threads)
    : pool_(std::make_unique<ThreadPool>(num_threads)),
      ops_(std::make_unique<CpuOps>(pool_.get())) {}

CpuBackend::~CpuBackend() = default;

Ops& CpuBackend::ops() { return *ops_; }

Result<DeviceBuffer> CpuBackend::Allocate(size_t bytes) {
  constexpr size_t kAlign = 64;
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* data = std::aligned_alloc(kAlign, rounded);
  if (data == nullptr) {
    return ResourceExhaustedError("cpu: cannot allocate " + std::to_string(bytes) + " bytes");
  }
  return DeviceBuffer(this, data, bytes);
}

void CpuBackend::Free(void* data, size_t /*bytes*/) { std::free(data); }

Status CpuBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return Status::Ok();
}

Status CpuBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return Status::Ok();
}

void RegisterCpuBackend() {
  RegisterBackend("cpu", [](const BackendOptions& options) -> Result<std::unique_ptr<Backend>> {
    return std::unique_ptr<Backend>(std::make_unique<CpuBackend>(options.num_threads));
  });
}

}  // namespace tokenfab
