// Sampler: one token from one row of logits under SamplingParams, on the host: the penalties
// (which need the request's tokens) and then backend/sample_row.h's rule, the one the backends'
// Sample op implements on the device.
//
// Seeded draws are reproducible: the uniform number for step n of a request is a pure
// function of (seed, n), the same on every machine. Thread-safety: a Sampler holds scratch
// space; use one per thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/sample_row.h"
#include "engine/sampling_params.h"

namespace tokenfab {

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0.0f;                    // under the raw model distribution
  std::vector<TokenLogprob> top_logprobs;  // num_logprobs best, best first
};

// The part of `params` the device Sample op applies (backend/device_sampling.h), for step `step`
// of a request seeded with `seed`: what the host Sampler applies after the bias and penalties.
DeviceSamplingParams SamplingRule(const SamplingParams& params, uint64_t seed, uint64_t step);

// log_softmax of one row (logits minus LogSumExp), returned as float.
void LogSoftmax(std::span<const float> logits, std::vector<float>* out);

class Sampler {
 public:
  // `prompt` and `output` are the request's tokens so far (for penalties); `seed` and `step`
  // pick the random number.
  SampledToken Sample(std::span<const float> logits, const SamplingParams& params,
                      std::span<const int32_t> prompt, std::span<const int32_t> output,
                      uint64_t seed, uint64_t step);

 private:
  // The logit bias, then the penalties, on work_.
  void ApplyPenalties(const SamplingParams& params, std::span<const int32_t> prompt,
                      std::span<const int32_t> output);

  std::vector<float> work_;      // processed logits
  std::vector<float> logprobs_;  // raw log-softmax
  std::vector<int32_t> candidates_;
  std::vector<int32_t> counts_;  // output-token counts for frequency penalties
};

}  // namespace tokenfab
