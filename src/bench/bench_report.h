// Summaries of load-generator runs: latency percentiles (TTFT, TPOT, ITL, end to end),
// throughput, goodput under TTFT and TPOT limits (default: MLPerf's Llama-3.1-8B server
// scenario, p99 TTFT <= 2 s and TPOT <= 100 ms), energy; and their JSON form. The HTML report
// with plots is html_report.h.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "base/json.h"
#include "bench/load_generator.h"

namespace tokenfab {

struct SloConfig {
  double ttft_s = 2.0;   // MLPerf Inference, Llama-3.1-8B server: TTFT p99 <= 2 s
  double tpot_s = 0.1;   //                                      TPOT p99 <= 100 ms
};

struct Distribution {
  std::vector<double> values;  // sorted
  double mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};
Distribution Distribute(std::vector<double> values);

struct RunSummary {
  std::string label;          // the server and setting, e.g. "tokenfab c=64"
  double concurrency = 0;     // closed loop
  double request_rate = 0;    // open loop (0: closed loop)
  int64_t completed = 0;
  int64_t failed = 0;
  double duration_s = 0;
  double started_unix_s = 0;           // when the measured run began, in Unix seconds
  double request_throughput = 0;       // completed requests per second
  double output_throughput = 0;        // output tokens per second
  double total_token_throughput = 0;   // prompt + output tokens per second
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_tokens = -1;          // prefix-cache hits the server reported (-1: none reported)
  Distribution ttft, tpot, itl, e2e;   // seconds
  SloConfig slo;
  double goodput = 0;                  // requests per second meeting both limits
  double goodput_tokens = 0;           // their output tokens per second
  double slo_attainment = 0;           // fraction of requests meeting both limits
  bool slo_met = false;                // p99 TTFT and p99 TPOT within the limits (MLPerf-style)
  double energy_joules = -1;
  double tokens_per_joule = -1;
  std::vector<std::string> errors;     // the first few
};

RunSummary Summarize(const LoadResult& result, const SloConfig& slo);

// {"label", "throughput": ..., "ttft": {"mean", "p50", ...}, ...}; with_samples adds the sorted
// samples (what the HTML plots need to be regenerated from JSON).
Json SummaryToJson(const RunSummary& s, bool with_samples);
Result<RunSummary> SummaryFromJson(const Json& j);

}  // namespace tokenfab
