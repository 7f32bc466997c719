#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/cpu_probe.h"

namespace tokenfab {

CpuBackend::CpuBackend(int num_threads)
    : pool_(std::make_unique<ThreadPool>(num_threads)),
      ops_(std::make_unique<CpuOps>(pool_.get())) {}

CpuBackend::~CpuBackend() = default;

Ops& CpuBackend::ops() { return *ops_; }

DeviceProbe* CpuBackend::probe() {
  if (!probe_) probe_ = std::make_unique<CpuProbe>(pool_.get());
  return probe_.get();
}

Result<DeviceBuffer> CpuBackend::Allocate(size_t bytes) {
  constexpr size_t kAlign = 64;
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  void* data = std::aligned_alloc(kAlign, rounded);
  if (data == nullptr) {
    return ResourceExhaustedError("cpu: cannot allocate " + std::to_string(bytes) + " bytes");
  }
  return DeviceBuffer(this, data, bytes);
}

uint64_t CpuBackend::FreeMemoryBytes() const {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return UINT64_MAX;  // unknown: let the allocation decide
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
