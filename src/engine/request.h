// What flows into and out of the engine for one generation request: EngineRequest in, a
// stream of RequestOutput back through a callback. Token ids only; text (detokenizing, stop
// strings) is the server's business.
// Thread-safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"

namespace tokenfab {

enum class FinishReason { kLength, kStop, kCancelled };

struct EngineRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  StopConditions stop;
  int32_t priority = 0;     // lower runs first; may preempt worse-priority running requests
  std::string cache_salt;   // prefix-cache tenant: KV is shared only within one salt
  bool pin_prefix = false;  // pin the prompt's full KV blocks in the prefix cache once computed
};

struct RequestOutput {
  int64_t id = 0;
  std::vector<SampledToken> tokens;  // new tokens since the previous output
  bool finished = false;
  FinishReason finish_reason = FinishReason::kLength;  // when finished
  Status status;                     // not OK: the request failed (and is finished)
  int32_t prompt_tokens = 0;
  int32_t cached_prompt_tokens = 0;  // prompt tokens found in the prefix cache on admission
  // When a step first computed part of this request (its wait in the queue ends there); the
  // clock's epoch if none has yet.
  std::chrono::steady_clock::time_point first_scheduled{};
};

// Receives a request's outputs on the engine's thread, in order, the last with finished set.
// Must not block: hand the output to another thread's queue.
using OutputCallback = std::function<void(RequestOutput&&)>;

}  // namespace tokenfab
