#include "backend/device_buffer.h"

#include <utility>

#include "backend/backend.h"

namespace tokenfab {

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    backend_ = std::exchange(other.backend_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::Reset() {
  if (data_ != nullptr) backend_->Free(data_, bytes_);
  backend_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

Tensor DeviceBuffer::View(DType dtype, std::initializer_list<int64_t> dims) const {
  Tensor t(data_, dtype, dims);
  CHECK_LE(t.bytes(), bytes_) << "view " << t.ShapeString() << " exceeds buffer";
  return t;
}

}  // namespace tokenfab
