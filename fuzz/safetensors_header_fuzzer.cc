// Feeds arbitrary bytes to the safetensors header parser: it must return a Status, never crash,
// hang or read outside the buffer (ASan/UBSan watch).
#include <cstddef>
#include <cstdint>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto header = tokenfab::ParseSafetensorsHeader(data, size, "fuzz.safetensors");
  if (header.ok()) {
    for (const auto& [name, entry] : header->tensors) {
      // Accepted entries must lie inside the buffer.
      if (entry.offset > size || entry.size > size - entry.offset) __builtin_trap();
    }
  }
  return 0;
}
