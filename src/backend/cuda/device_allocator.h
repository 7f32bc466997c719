// DeviceAllocator: a caching allocator for GPU memory. Freed blocks are kept in per-size free
// lists and reused for the next request of the same rounded size, so steady-state work never
// calls cudaMalloc (which synchronises the device) or cudaFree. Sizes round up to 2 MiB above
// 1 MiB and to powers of two below it. Memory goes back to the driver only in ReleaseCached()
// (called when an allocation fails, before giving up). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace tokenfab {

class DeviceAllocator {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}
  ~DeviceAllocator();

  Result<void*> Allocate(size_t bytes);
  void Free(void* ptr);
  void ReleaseCached();

  uint64_t bytes_in_use() const;
  uint64_t bytes_cached() const;

  static size_t RoundSize(size_t bytes);

 private:
  int device_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // guarded by mu_; rounded size -> blocks
  std::unordered_map<void*, size_t> live_;     // guarded by mu_
  uint64_t in_use_ = 0;                        // guarded by mu_
  uint64_t cached_ = 0;                        // guarded by mu_
};

}  // namespace tokenfab
