#include "model/safetensors.h"

#include <cstring>
#include <limits>

#include "base/json.h"

namespace tokenfab {
namespace {

struct DTypeInfo {
  const char* name;
  SafeDType dtype;
  uint64_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {"F32", SafeDType::kF32, 4},  {"BF16", SafeDType::kBF16, 2}, {"F16", SafeDType::kF16, 2},
    {"F64", SafeDType::kF64, 8},  {"I64", SafeDType::kI64, 8},   {"I32", SafeDType::kI32, 4},
    {"I16", SafeDType::kI16, 2},  {"I8", SafeDType::kI8, 1},     {"U8", SafeDType::kU8, 1},
    {"BOOL", SafeDType::kBool, 1},
};

// Largest header we accept; real ones are well under 1 MB (the reference reader caps 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

}  // namespace

std::string_view SafeDTypeName(SafeDType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.name;
  }
  return "unsupported";
}

Result<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* data, size_t size,
                                                 std::string_view file_name) {
  const std::string where(file_name);
  if (size < 8) {
    return DataLossError(where + ": truncated safetensors file (" + std::to_string(size) +
                         " bytes, no header)");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | data[i];
  if (header_len > kMaxHeaderBytes) {
    return DataLossError(where + ": corrupt safetensors header length " +
                         std::to_string(header_len));
  }
  if (header_len > size - 8) {
    return DataLossError(where + ": truncated safetensors header (needs " +
                         std::to_string(header_len) + " bytes, file has " +
                         std::to_string(size - 8) + ")");
  }
  const std::string_view text(reinterpret_cast<const char*>(data + 8), header_len);
  auto parsed = ParseJson(text, where + ": safetensors header");
  if (!parsed.ok()) return DataLossError(parsed.status().message());
  const Json& root = parsed.value();
  if (!root.is_object()) return DataLossError(where + ": safetensors header is not a JSON object");

  SafetensorsHeader header;
  header.data_start = 8 + header_len;
  const uint64_t data_bytes = size - header.data_start;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") continue;
    const std::string what = where + ": tensor '" + name + "'";
    if (!value.is_object()) return DataLossError(what + ": entry is not an object");
    const auto dtype_it = value.find("dtype");
    const auto shape_it = value.find("shape");
    const auto offsets_it = value.find("data_offsets");
    if (dtype_it == value.end() || !dtype_it->is_string()) {
      return DataLossError(what + ": missing dtype");
    }
    if (shape_it == value.end() || !shape_it->is_array()) {
      return DataLossError(what + ": missing shape");
    }
    if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      return DataLossError(what + ": data_offsets must be two non-negative integers");
    }
    SafetensorsEntry entry;
    entry.dtype_name = dtype_it->get<std::string>();
    uint64_t element_size = 0;
    for (const DTypeInfo& info : kDTypes) {
      if (entry.dtype_name == info.name) {
        entry.dtype = info.dtype;
        element_size = info.size;
      }
    }
    if (element_size == 0) {
      // Unknown element types (F8_E4M3, ...) may sit in a file beside weights we do use; the
      // entry is kept and refused only if a model asks for it. Its size cannot be checked.
      entry.dtype = SafeDType::kOther;
    }
    uint64_t numel = 1;
    for (const Json& d : *shape_it) {
      if (!d.is_number_unsigned()) return DataLossError(what + ": shape has a non-integer");
      const uint64_t n = d.get<uint64_t>();
      if (n != 0 && numel > std::numeric_limits<uint64_t>::max() / n) {
        return DataLossError(what + ": shape overflows");
      }
      numel *= n;
      if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return DataLossError(what + ": dimension too large");
      }
      entry.shape.push_back(static_cast<int64_t>(n));
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_bytes) {
      return DataLossError(what + ": data_offsets [" + std::to_string(begin) + ", " +
                           std::to_string(end) + ") outside the " + std::to_string(data_bytes) +
                           " data bytes (truncated file?)");
    }
    if (element_size != 0 &&
        (numel > std::numeric_limits<uint64_t>::max() / element_size ||
         numel * element_size != end - begin)) {
      return DataLossError(what + ": " + std::to_string(end - begin) + " bytes do not match " +
                           entry.dtype_name + " shape of " + std::to_string(numel) + " elements");
    }
    entry.offset = header.data_start + begin;
    entry.size = end - begin;
    header.tensors.emplace(name, std::move(entry));
  }
  return header;
}

}  // namespace tokenfab
