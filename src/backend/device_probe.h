// DeviceProbe: measures a device's own ceilings — streaming read bandwidth, copy bandwidth and
// dense matrix-multiply rate — so benchmarks can report the fraction of the roofline they
// reach on this very machine instead of datasheet numbers. Takes seconds; benchmark use only.
#pragma once

#include <string>

#include "base/status.h"

namespace tokenfab {

struct DeviceCeilings {
  std::string device_name;
  double read_gb_per_s = 0;   // bytes read per second by a large streaming kernel
  double copy_gb_per_s = 0;   // (bytes read + bytes written) per second of a large copy
  double matmul_tflops = 0;   // dense GEMM in the backend's compute dtype (bf16 on GPUs)
  std::string matmul_dtype;
};

class DeviceProbe {
 public:
  virtual ~DeviceProbe() = default;
  virtual Result<DeviceCeilings> MeasureCeilings() = 0;
};

}  // namespace tokenfab
