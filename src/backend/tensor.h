// Tensor: a non-owning view of a dense, row-major tensor in one backend's memory.
//
// Views are cheap values; the memory belongs to a DeviceBuffer (device_buffer.h) that must
// outlive them. Rank is at most 4. Nothing here touches the memory, so views of device memory
// can be built and sliced on the host.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "backend/dtype.h"
#include "base/check.h"

namespace tokenfab {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int rank = 0;
  std::array<int64_t, 4> shape{};

  Tensor() = default;
  Tensor(void* data, DType dtype, std::initializer_list<int64_t> dims);

  bool empty() const { return data == nullptr; }
  int64_t dim(int i) const {
    CHECK(i >= 0 && i < rank) << "dim " << i << " of rank " << rank;
    return shape[i];
  }
  int64_t numel() const;
  size_t bytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }
  // Elements per row: the product of all dims but the first.
  int64_t row_size() const { return rank == 0 ? 1 : numel() / shape[0]; }

  // Rows [begin, begin + count) of the first dimension.
  Tensor Rows(int64_t begin, int64_t count) const;
  // The same memory with another shape of equal element count.
  Tensor Reshape(std::initializer_list<int64_t> dims) const;

  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }

  std::string ShapeString() const;  // "[2, 3]"
};

}  // namespace tokenfab
