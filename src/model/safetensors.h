// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the tensor bytes (offsets are relative to the end of the header).
//
// ParseSafetensorsHeader validates everything a malicious file could get wrong — lengths,
// offsets past the end, sizes that disagree with shape and dtype, integer overflow — and never
// reads outside [data, data + size). It is pure and thread-safe (and fuzzed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tokenfab {

// Element types a safetensors file may declare. Only the float ones can be model weights.
enum class SafeDType { kF32, kBF16, kF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kOther };

std::string_view SafeDTypeName(SafeDType dtype);

struct SafetensorsEntry {
  SafeDType dtype = SafeDType::kOther;
  std::string dtype_name;       // as written in the file
  std::vector<int64_t> shape;
  uint64_t offset = 0;          // from the start of the file
  uint64_t size = 0;            // bytes
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry, std::less<>> tensors;
  uint64_t data_start = 0;  // 8 + header length
};

// `file_name` prefixes every error message.
Result<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* data, size_t size,
                                                 std::string_view file_name);

}  // namespace tokenfab
