#include "bench/rate_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tokenfab {

Status RateSearchConfig::Validate() const {
  if (!(min_rate > 0) || !(start_rate >= min_rate) || !(max_rate >= start_rate)) {
    return InvalidArgumentError("rate search needs 0 < min rate <= start rate <= max rate");
  }
  if (!(precision > 0)) return InvalidArgumentError("rate search precision must be > 0");
  if (max_trials < 1) return InvalidArgumentError("rate search needs at least one trial");
  return Status::Ok();
}

Result<RateSearchResult> FindMaxRate(const RateSearchConfig& config,
                                     const std::function<Result<bool>(double rate)>& trial) {
  TF_RETURN_IF_ERROR(config.Validate());
  RateSearchResult result;
  const double kNone = std::numeric_limits<double>::infinity();
  double pass = 0, fail = kNone;  // the highest rate that passed, the lowest that failed
  auto run = [&](double rate) -> Result<bool> {
    TF_ASSIGN_OR_RETURN(const bool passed, trial(rate));
    result.trials.push_back({rate, passed});
    if (passed)
      pass = std::max(pass, rate);
    else
      fail = std::min(fail, rate);
    return passed;
  };
  auto budget = [&] { return static_cast<int>(result.trials.size()) < config.max_trials; };
  // Bracket: double while trials pass, halve while they fail.
  double rate = config.start_rate;
  while (budget()) {
    TF_ASSIGN_OR_RETURN(const bool passed, run(rate));
    if (passed) {
      if (fail != kNone || rate >= config.max_rate) break;
      rate = std::min(rate * 2, config.max_rate);
    } else {
      if (pass > 0 || rate / 2 < config.min_rate) break;
      rate /= 2;
    }
  }
  // Refine: geometric bisection of (pass, fail).
  while (budget() && pass > 0 && fail != kNone && fail / pass > 1 + config.precision) {
    TF_RETURN_IF_ERROR(run(std::sqrt(pass * fail)).status());
  }
  result.max_rate = pass;
  result.capped = pass >= config.max_rate;
  return result;
}

}  // namespace tokenfab
