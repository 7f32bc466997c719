// Ceilings of the CPU backend: a threaded sum over 1 GiB (read), memcpy of 512 MiB (copy) and
// the backend's own f32 GEMM at 1024^3 (its best case, not the silicon's peak).
#pragma once

#include "backend/device_probe.h"
#include "base/thread_pool.h"

namespace tokenfab {

class CpuProbe final : public DeviceProbe {
 public:
  explicit CpuProbe(ThreadPool* pool) : pool_(pool) {}
  Result<DeviceCeilings> MeasureCeilings() override;

 private:
  ThreadPool* pool_;
};

}  // namespace tokenfab
