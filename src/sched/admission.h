// Admission control: reject a request at the door (HTTP 429 with Retry-After) when the queue
// is full or when its estimated time to first token already exceeds the configured limit,
// instead of letting it wait and time out (DESIGN.md: reject early when the SLO cannot be
// met). The estimate is the prefill work queued ahead of it plus its own, at the prefill rate
// the engine measured, plus one step. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace tokenfab {

struct AdmissionConfig {
  int32_t max_waiting = 4096;    // requests queued (not yet running) at most
  double max_queue_ttft_s = 0;   // estimated TTFT limit in seconds; 0 = no limit
};

struct LoadEstimate {
  int32_t num_waiting = 0;
  int64_t waiting_prefill_tokens = 0;  // uncomputed prompt tokens of the queued requests
  double prefill_tokens_per_s = 0;     // measured; 0 = not measured yet (then never reject)
  double step_seconds = 0;             // recent mean step time
};

struct AdmissionDecision {
  bool admit = true;
  double estimated_ttft_s = 0;
  double retry_after_s = 0;  // when rejected: a hint for the client, whole seconds >= 1
  std::string reason;
};

AdmissionDecision DecideAdmission(const AdmissionConfig& config, const LoadEstimate& load,
                                  int64_t prompt_tokens);

}  // namespace tokenfab
