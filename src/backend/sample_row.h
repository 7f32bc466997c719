// The host implementation of the sampling rule in device_sampling.h, for one row of logits.
// The CPU backend's Sample op and the engine's host Sampler (which applies penalties first)
// both call it; the CUDA kernel implements the same rule on the device. Pure, thread-safe.
#pragma once

#include <cstdint>
#include <span>

#include "backend/device_sampling.h"

namespace tokenfab {

struct SampledRow {
  int32_t token = 0;
  float logprob = 0.0f;  // log-softmax of the logits given, at `token`
};

// `logits` are sampled as given (penalties, if any, already applied); the logprob is taken
// from `raw_logits` (the model's unprocessed row; may be the same span).
SampledRow SampleRow(std::span<const float> logits, std::span<const float> raw_logits,
                     const DeviceSamplingParams& params);

// log(sum(exp(logits))), accumulated in double.
double LogSumExp(std::span<const float> logits);

}  // namespace tokenfab
