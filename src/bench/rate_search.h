// The highest Poisson request rate a server sustains within its latency limits (the MLPerf
// server scenario's question): trials at growing rates until one fails, then bisection between
// the last rate that passed and the first that failed. A trial is whatever the caller runs at a
// rate (tokenfab bench: a timed open-loop run judged by p99 TTFT and TPOT); the search assumes
// that a rate passing implies every lower rate passes.
// Thread-safety: FindMaxRate is a plain function; it calls `trial` from the calling thread.
#pragma once

#include <functional>
#include <vector>

#include "base/status.h"

namespace tokenfab {

struct RateSearchConfig {
  double start_rate = 4;     // requests per second of the first trial
  double max_rate = 1024;    // never offer more than this
  double min_rate = 0.0625;  // below this, report that no rate passes
  double precision = 0.1;    // stop when the first failing rate is within this of the last pass
  int max_trials = 12;
  Status Validate() const;
};

struct RateTrial {
  double rate = 0;
  bool passed = false;
};

struct RateSearchResult {
  double max_rate = 0;            // the highest rate that passed; 0 if none did
  bool capped = false;            // max_rate passed: the server may sustain more
  std::vector<RateTrial> trials;  // in the order they ran
};

// Runs `trial` at the rates the search picks; its error ends the search.
Result<RateSearchResult> FindMaxRate(const RateSearchConfig& config,
                                     const std::function<Result<bool>(double rate)>& trial);

}  // namespace tokenfab
