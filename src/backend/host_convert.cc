#include "backend/host_convert.h"

#include <cstring>
#include <vector>

#include "base/check.h"
#include "base/half.h"

namespace tokenfab {
namespace {

float LoadF32(const void* src, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kF32: return static_cast<const float*>(src)[i];
    case DType::kBF16: return Bf16ToFloat(static_cast<const uint16_t*>(src)[i]);
    case DType::kF16: return F16ToFloat(static_cast<const uint16_t*>(src)[i]);
    case DType::kI32: break;
  }
  CHECK(false) << "not a float dtype: " << DTypeName(dtype);
  return 0.0f;
}

void StoreF32(void* dst, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::kF32: static_cast<float*>(dst)[i] = v; return;
    case DType::kBF16: static_cast<uint16_t*>(dst)[i] = FloatToBf16(v); return;
    case DType::kF16: static_cast<uint16_t*>(dst)[i] = FloatToF16(v); return;
    case DType::kI32: break;
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
