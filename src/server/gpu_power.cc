#include "server/gpu_power.h"

#include <dlfcn.h>

namespace tokenfab {

// The few NVML entry points used, as the public nvml.h declares them.
struct GpuPowerMonitor::Api {
  using Device = void*;
  void* lib = nullptr;
  int (*init)() = nullptr;
  int (*shutdown)() = nullptr;
  int (*count)(unsigned int*) = nullptr;
  int (*handle)(unsigned int, Device*) = nullptr;
  int (*power)(Device, unsigned int*) = nullptr;               // milliwatts
  int (*energy)(Device, unsigned long long*) = nullptr;        // millijoules
  std::vector<Device> devices;
};

std::unique_ptr<GpuPowerMonitor> GpuPowerMonitor::Open() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return nullptr;
  auto api = std::make_unique<Api>();
  api->lib = lib;
  api->init = reinterpret_cast<int (*)()>(dlsym(lib, "nvmlInit_v2"));
  api->shutdown = reinterpret_cast<int (*)()>(dlsym(lib, "nvmlShutdown"));
  api->count = reinterpret_cast<int (*)(unsigned int*)>(dlsym(lib, "nvmlDeviceGetCount_v2"));
  api->handle =
      reinterpret_cast<int (*)(unsigned int, Api::Device*)>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  api->power = reinterpret_cast<int (*)(Api::Device, unsigned int*)>(dlsym(lib, "nvmlDeviceGetPowerUsage"));
  api->energy = reinterpret_cast<int (*)(Api::Device, unsigned long long*)>(
      dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption"));
  unsigned int n = 0;
  if (!api->init || !api->shutdown || !api->count || !api->handle || !api->power || !api->energy ||
      api->init() != 0) {
    dlclose(lib);
    return nullptr;
  }
  if (api->count(&n) != 0 || n == 0) {
    api->shutdown();
    dlclose(lib);
    return nullptr;
  }
  for (unsigned int i = 0; i < n; ++i) {
    Api::Device d = nullptr;
    if (api->handle(i, &d) == 0) api->devices.push_back(d);
  }
  return std::unique_ptr<GpuPowerMonitor>(new GpuPowerMonitor(std::move(api)));
}

GpuPowerMonitor::GpuPowerMonitor(std::unique_ptr<Api> api) : api_(std::move(api)) {}

GpuPowerMonitor::~GpuPowerMonitor() {
  api_->shutdown();
  dlclose(api_->lib);
}

std::vector<GpuPowerReading> GpuPowerMonitor::Read() const {
  std::vector<GpuPowerReading> out;
  for (size_t i = 0; i < api_->devices.size(); ++i) {
    GpuPowerReading r;
    r.index = static_cast<int>(i);
    unsigned int mw = 0;
    unsigned long long mj = 0;
    if (api_->power(api_->devices[i], &mw) == 0) r.power_watts = mw / 1000.0;
    if (api_->energy(api_->devices[i], &mj) == 0) r.energy_joules = static_cast<double>(mj) / 1000.0;
    out.push_back(r);
  }
  return out;
}

}  // namespace tokenfab
