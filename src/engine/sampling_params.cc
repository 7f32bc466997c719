#include "engine/sampling_params.h"

#include <cmath>
#include <string>

namespace tokenfab {

Status SamplingParams::Validate() const {
  if (!std::isfinite(temperature) || temperature < 0.0 || temperature > 100.0) {
    return InvalidArgumentError("temperature must be in [0, 100]");
  }
  if (top_k < 0) return InvalidArgumentError("top_k must be >= 0 (0 disables it)");
  if (!(top_p > 0.0 && top_p <= 1.0)) return InvalidArgumentError("top_p must be in (0, 1]");
  if (!(min_p >= 0.0 && min_p <= 1.0)) return InvalidArgumentError("min_p must be in [0, 1]");
  if (!(repetition_penalty > 0.0 && repetition_penalty <= 100.0)) {
    return InvalidArgumentError("repetition_penalty must be in (0, 100]");
  }
  if (!(presence_penalty >= -2.0 && presence_penalty <= 2.0)) {
    return InvalidArgumentError("presence_penalty must be in [-2, 2]");
  }
  if (!(frequency_penalty >= -2.0 && frequency_penalty <= 2.0)) {
    return InvalidArgumentError("frequency_penalty must be in [-2, 2]");
  }
  if (num_logprobs < -1 || num_logprobs > 20) {
    return InvalidArgumentError("logprobs must be in [0, 20]");
  }
  for (const auto& [token, bias] : logit_bias) {
    if (token < 0) return InvalidArgumentError("logit_bias token ids must be >= 0");
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      return InvalidArgumentError("logit_bias values must be in [-100, 100]");
    }
  }
  return Status::Ok();
}

Status StopConditions::Validate() const {
  if (max_tokens < 1) {
    return InvalidArgumentError("max_tokens must be at least 1, got " +
                                std::to_string(max_tokens));
  }
  return Status::Ok();
}

}  // namespace tokenfab
