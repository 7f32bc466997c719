// Element conversion between host buffers of different dtypes (checkpoint -> device layout).
// Exact for widening; float -> bf16/f16 rounds to nearest even. Neither buffer needs to be
// aligned (checkpoint tensors are read in place from mapped files). Thread-safe.
#pragma once

#include <cstdint>

#include "backend/dtype.h"

namespace tokenfab {

void ConvertHost(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t count);

}  // namespace tokenfab
