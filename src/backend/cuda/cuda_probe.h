// Ceilings of one GPU: a streaming read kernel over 4 GiB, a 4 GiB device-to-device copy and
// a cuBLASLt bf16 8192^3 GEMM on random (not zero) data, each timed with CUDA events as the
// median of several runs after a warm-up.
#pragma once

#include "backend/device_probe.h"

namespace tokenfab {

class CudaBackend;
class CublasLtGemm;

class CudaProbe final : public DeviceProbe {
 public:
  CudaProbe(CudaBackend* backend, CublasLtGemm* gemm) : backend_(backend), gemm_(gemm) {}
  Result<DeviceCeilings> MeasureCeilings() override;

 private:
  CudaBackend* backend_;
  CublasLtGemm* gemm_;
};

}  // namespace tokenfab
