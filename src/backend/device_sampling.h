// DeviceSamplingParams: the per-row sampling settings the Sample op reads from device memory
// (a POD, laid out identically on host and device).
//
// Semantics (shared with engine/Sampler, which adds penalties on the host): temperature 0 (or
// top_k 1) is greedy, the lowest token id winning ties; otherwise logits are divided by the
// temperature and the candidates are those at or above each enabled threshold — the k-th
// largest logit (top_k > 0), the smallest logit of the most likely set reaching top_p
// (top_p < 1), and max + log(min_p) (min_p > 0) — and the token is drawn from their
// renormalised probabilities, walking the candidates in token-id order with the uniform number
// UniformDouble(seed, 0, step) (base/random.h).
#pragma once

#include <cstdint>

namespace tokenfab {

struct DeviceSamplingParams {
  float temperature = 0.0f;
  float top_p = 1.0f;
  float min_p = 0.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  uint64_t step = 0;
};
static_assert(sizeof(DeviceSamplingParams) == 32, "layout shared with device code");

}  // namespace tokenfab
