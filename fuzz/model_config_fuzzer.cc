// Feeds arbitrary text to the config.json parser: errors are fine, crashes and aborts are not,
// and anything accepted must pass Validate().
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = tokenfab::ParseModelConfig(text, "fuzz/config.json");
  if (config.ok() && !config->Validate().ok()) __builtin_trap();
  return 0;
}
