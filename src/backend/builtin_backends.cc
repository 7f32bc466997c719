// The one place that knows which backends this binary was built with.
#include "backend/backend_registry.h"
#include "backend/cpu/cpu_backend.h"
#ifdef TOKENFAB_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace tokenfab {

void RegisterBuiltinBackends() {
  RegisterCpuBackend();
#ifdef TOKENFAB_WITH_CUDA
  RegisterCudaBackend();
#endif
}

}  // namespace tokenfab
