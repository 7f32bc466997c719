#include "backend/cuda/device_allocator.h"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_util.h"
#include "base/check.h"

namespace tokenfab {

DeviceAllocator::~DeviceAllocator() {
  ReleaseCached();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [ptr, size] : live_) cudaFree(ptr);  // leaked by the owner; freed with the context
}

size_t DeviceAllocator::RoundSize(size_t bytes) {
  constexpr size_t kSmall = 1 << 20, kGranule = 2 << 20;
  if (bytes == 0) bytes = 1;
  if (bytes <= kSmall) {
    size_t rounded = 512;
    while (rounded < bytes) rounded <<= 1;
    return rounded;
  }
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

Result<void*> DeviceAllocator::Allocate(size_t bytes) {
  const size_t size = RoundSize(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      cached_ -= size;
      in_use_ += size;
      live_[ptr] = size;
      return ptr;
    }
  }
  TF_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  void* ptr = nullptr;
  cudaError_t err = cudaMalloc(&ptr, size);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the sticky-free error state
    ReleaseCached();
    err = cudaMalloc(&ptr, size);
  }
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return ResourceExhaustedError("cuda: cannot allocate " + std::to_string(bytes) +
                                  " bytes: " + cudaGetErrorString(err));
  }
  std::lock_guard<std::mutex> lock(mu_);
  live_[ptr] = size;
  in_use_ += size;
  return ptr;
}

void DeviceAllocator::Free(void* ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  CHECK(it != live_.end()) << "free of an unknown device pointer";
  free_[it->second].push_back(ptr);
  in_use_ -= it->second;
  cached_ += it->second;
  live_.erase(it);
}

void DeviceAllocator::ReleaseCached() {
  std::lock_guard<std::mutex> lock(mu_);
  cudaSetDevice(device_);
  for (auto& [size, blocks] : free_) {
    for (void* ptr : blocks) cudaFree(ptr);
  }
  free_.clear();
  cached_ = 0;
}

uint64_t DeviceAllocator::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

uint64_t DeviceAllocator::bytes_cached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}

}  // namespace tokenfab
