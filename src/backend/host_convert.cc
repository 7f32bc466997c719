#include "backend/host_convert.h"

#include <cstring>
#include <vector>

#include "base/check.h"
#include "base/half.h"

namespace tokenfab {
namespace {

// Element i of a buffer of T that may sit at any address: a safetensors file's tensor data
// starts at 8 + header length, which the format does not align, and the mapped file is read
// in place. memcpy compiles to a plain (unaligned) load.
template <typename T>
T LoadAt(const void* base, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const char*>(base) + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}

template <typename T>
void StoreAt(void* base, int64_t i, T v) {
  std::memcpy(static_cast<char*>(base) + i * static_cast<int64_t>(sizeof(T)), &v, sizeof(T));
}

float LoadF32(const void* src, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kF32: return LoadAt<float>(src, i);
    case DType::kBF16: return Bf16ToFloat(LoadAt<uint16_t>(src, i));
    case DType::kF16: return F16ToFloat(LoadAt<uint16_t>(src, i));
    case DType::kI32:
    case DType::kU8: break;
  }
  CHECK(false) << "not a float dtype: " << DTypeName(dtype);
  return 0.0f;
}

void StoreF32(void* dst, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::kF32: StoreAt<float>(dst, i, v); return;
    case DType::kBF16: StoreAt<uint16_t>(dst, i, FloatToBf16(v)); return;
    case DType::kF16: StoreAt<uint16_t>(dst, i, FloatToF16(v)); return;
    case DType::kI32:
    case DType::kU8: break;
  }
  CHECK(false) << "not a float dtype: " << DTypeName(dtype);
}

}  // namespace

void ConvertHost(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count) {
  if (src_dtype == dst_dtype) {
    std::memcpy(dst, src, static_cast<size_t>(count) * DTypeSize(src_dtype));
    return;
  }
  for (int64_t i = 0; i < count; ++i) StoreF32(dst, dst_dtype, i, LoadF32(src, src_dtype, i));
}

}  // namespace tokenfab
