// The CPU backend: the exact reference (f32 activations, f32 KV cache, f32 accumulation) that CI
// runs and the CUDA backend is checked against. Weights stay in their checkpoint dtype and are
// widened to f32 inside the kernels. Ops run synchronously on the calling thread, fanned out
// over a ThreadPool. Thread-safety: one thread drives it at a time.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "backend/backend_registry.h"
#include "base/thread_pool.h"

namespace tokenfab {

class CpuOps;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads);
  ~CpuBackend() override;

  std::string_view name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }
  DType WeightDType(DType stored) const override { return stored; }

  Result<DeviceBuffer> Allocate(size_t bytes) override;
  // MemAvailable from /proc/meminfo: what the kernel can give without swapping.
  uint64_t FreeMemoryBytes() const override;
  Status CopyToDevice(void* dst, const void* src, size_t bytes) override;
  Status CopyToHost(void* dst, const void* src, size_t bytes) override;
  Status Synchronize() override { return Status::Ok(); }
  Ops& ops() override;
  DeviceProbe* probe() override;

  ThreadPool& pool() { return *pool_; }

 protected:
  void Free(void* data, size_t bytes) override;

 private:
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<CpuOps> ops_;
  std::unique_ptr<DeviceProbe> probe_;
};

void RegisterCpuBackend();

}  // namespace tokenfab
