// Named backend factories: "cpu" always, "cuda" when built with TOKENFAB_CUDA.
//
// Implementations call RegisterBackend once at start-up (RegisterBuiltinBackends does it for
// those compiled in). Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace tokenfab {

struct BackendOptions {
  int device_index = 0;  // which GPU
  int num_threads = 0;   // CPU: worker threads, 0 = all hardware threads
};

using BackendFactory = std::function<Result<std::unique_ptr<Backend>>(const BackendOptions&)>;

void RegisterBackend(const std::string& name, BackendFactory factory);

// NotFound naming the known backends when `name` is not registered.
Result<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                               const BackendOptions& options = {});

std::vector<std::string> RegisteredBackends();

// Registers every backend compiled into this binary.
void RegisterBuiltinBackends();

}  // namespace tokenfab
