#include "sched/admission.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tokenfab {

AdmissionDecision DecideAdmission(const AdmissionConfig& config, const LoadEstimate& load,
                                  int64_t prompt_tokens) {
  AdmissionDecision d;
  if (load.prefill_tokens_per_s > 0) {
    d.estimated_ttft_s =
        static_cast<double>(load.waiting_prefill_tokens + prompt_tokens) /
            load.prefill_tokens_per_s +
        load.step_seconds;
  }
  if (load.num_waiting >= config.max_waiting) {
    d.admit = false;
    d.reason = "the request queue is full (" + std::to_string(load.num_waiting) + " waiting)";
    // The queue drains at about one prefill's worth per request ahead.
    d.retry_after_s = std::max(1.0, std::ceil(d.estimated_ttft_s));
    return d;
  }
  if (config.max_queue_ttft_s > 0 && load.prefill_tokens_per_s > 0 &&
      d.estimated_ttft_s > config.max_queue_ttft_s) {
    d.admit = false;
    char text[160];
    std::snprintf(text, sizeof(text),
                  "the server is overloaded: estimated time to first token %.1f s exceeds "
                  "the limit of %.1f s",
                  d.estimated_ttft_s, config.max_queue_ttft_s);
    d.reason = text;
    d.retry_after_s = std::max(1.0, std::ceil(d.estimated_ttft_s - config.max_queue_ttft_s));
  }
  return d;
}

}  // namespace tokenfab
