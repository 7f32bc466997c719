// SamplingParams: how one request turns logits into tokens, with OpenAI / vLLM semantics.
//
// Order of processing: logit_bias (added to the listed tokens' logits, OpenAI's semantics; -100
// in effect bans a token, +100 forces it) -> repetition penalty (prompt and output tokens,
// HF-style: positive logits divided, negative multiplied) and presence / frequency penalties
// (output tokens only, subtracted) -> temperature (0 means greedy) -> top-k (tokens tied with
// the k-th logit stay, as in transformers) -> top-p -> min-p -> draw (backend/device_sampling.h
// has the details). Log-probs are reported from the model's raw distribution, before any of
// this processing (vLLM's default), so they are comparable across sampling settings.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "base/status.h"

namespace tokenfab {

struct SamplingParams {
  double temperature = 1.0;
  int32_t top_k = 0;        // 0: off
  double top_p = 1.0;       // 1: off
  double min_p = 0.0;       // 0: off
  double repetition_penalty = 1.0;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  std::optional<uint64_t> seed;  // unset: a fresh random seed per request
  int32_t num_logprobs = -1;     // -1: none; 0: the chosen token's; k: plus the top k tokens
  // (token id, bias in [-100, 100]), ids distinct; checked against the vocabulary by the engine.
  std::vector<std::pair<int32_t, float>> logit_bias;

  bool greedy() const { return temperature == 0.0 || top_k == 1; }
  Status Validate() const;
};

// What ends a request besides its sampling.
struct StopConditions {
  int32_t max_tokens = 16;
  std::vector<int32_t> stop_token_ids;  // besides EOS
  bool ignore_eos = false;
  Status Validate() const;
};

}  // namespace tokenfab
