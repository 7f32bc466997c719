// DeviceBuffer: owned memory of one backend (RAII). Move-only; frees through its backend, which
// must outlive it. Thread-safety: like any value; freeing is the backend's business.
#pragma once

#include <cstddef>
#include <initializer_list>

#include "backend/tensor.h"

namespace tokenfab {

class Backend;

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* backend, void* data, size_t bytes)
      : backend_(backend), data_(data), bytes_(bytes) {}
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }

  // A view of the whole buffer, or of its first bytes; CHECKs that it fits.
  Tensor View(DType dtype, std::initializer_list<int64_t> dims) const;

  void Reset();

 private:
  Backend* backend_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace tokenfab
