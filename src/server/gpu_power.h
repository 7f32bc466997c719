// GPU power and energy through NVML, loaded at run time (dlopen of libnvidia-ml.so.1), so the
// binary needs no NVIDIA library to build or run: without a driver or a GPU, Open returns
// null and the metrics are simply absent. Used by the server's /metrics (tokens per joule)
// and by the load generator (energy of a benchmark run).
// Thread-safety: Read may be called from any thread (NVML is thread-safe).
#pragma once

#include <memory>
#include <vector>

namespace tokenfab {

struct GpuPowerReading {
  int index = 0;
  double power_watts = 0;    // current draw
  double energy_joules = 0;  // since the driver loaded (monotonic)
};

class GpuPowerMonitor {
 public:
  // Null when NVML or a GPU is not available.
  static std::unique_ptr<GpuPowerMonitor> Open();
  ~GpuPowerMonitor();
  std::vector<GpuPowerReading> Read() const;

 private:
  struct Api;
  explicit GpuPowerMonitor(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

}  // namespace tokenfab
