// Launcher of on-GPU sampling: one token per row of logits by the rule of
// backend/device_sampling.h (greedy, temperature, top-k, top-p, min-p, seeded), plus the raw
// log-probability of the chosen token, so a decode step copies R ids to the host instead of
// R * vocab logits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/device_sampling.h"

namespace tokenfab::cuda {

struct SampleParams {
  const float* logits;                  // [rows, vocab]
  const DeviceSamplingParams* params;   // [rows]
  int32_t* tokens;                      // [rows]
  float* logprobs;                      // [rows]
  int rows;
  int vocab;
};

cudaError_t LaunchSample(const SampleParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
