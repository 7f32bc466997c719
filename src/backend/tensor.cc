#include "backend/tensor.h"

namespace tokenfab {

Tensor::Tensor(void* d, DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
  CHECK_LE(dims.size(), 4u);
  rank = static_cast<int>(dims.size());
  int i = 0;
  for (int64_t n : dims) {
    CHECK_GE(n, 0);
    shape[i++] = n;
  }
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[i];
  return n;
}

Tensor Tensor::Rows(int64_t begin, int64_t count) const {
  CHECK_GE(rank, 1);
  CHECK(begin >= 0 && count >= 0 && begin + count <= shape[0])
      << "rows [" << begin << ", " << begin + count << ") of " << ShapeString();
  Tensor out = *this;
  out.shape[0] = count;
  out.data = static_cast<char*>(data) + begin * row_size() * DTypeSize(dtype);
  return out;
}

Tensor Tensor::Reshape(std::initializer_list<int64_t> dims) const {
  Tensor out(data, dtype, dims);
  CHECK_EQ(out.numel(), numel()) << "reshape " << ShapeString() << " to " << out.ShapeString();
  return out;
}

std::string Tensor::ShapeString() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace tokenfab
