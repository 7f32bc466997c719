#include "bench/bench_report.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tokenfab {
namespace {

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank, as MLPerf's loadgen reports.
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Json DistributionJson(const Distribution& d, bool with_samples) {
  Json j = {{"mean", d.mean}, {"p50", d.p50}, {"p90", d.p90}, {"p95", d.p95},
            {"p99", d.p99},   {"max", d.max}, {"count", d.values.size()}};
  if (with_samples) j["samples"] = d.values;
  return j;
}

Distribution DistributionFromJson(const Json& j) {
  std::vector<double> v;
  if (j.is_object() && j.contains("samples") && j["samples"].is_array()) {
    for (const Json& x : j["samples"]) {
      if (x.is_number()) v.push_back(x.get<double>());
    }
  }
  return Distribute(std::move(v));
}

}  // namespace

Distribution Distribute(std::vector<double> values) {
  Distribution d;
  std::sort(values.begin(), values.end());
  d.values = std::move(values);
  if (d.values.empty()) return d;
  d.mean = std::accumulate(d.values.begin(), d.values.end(), 0.0) / static_cast<double>(d.values.size());
  d.p50 = Percentile(d.values, 50);
  d.p90 = Percentile(d.values, 90);
  d.p95 = Percentile(d.values, 95);
  d.p99 = Percentile(d.values, 99);
  d.max = d.values.back();
  return d;
}

RunSummary Summarize(const LoadResult& result, const SloConfig& slo) {
  RunSummary s;
  s.slo = slo;
  s.duration_s = result.duration_s;
  s.started_unix_s = result.started_unix_s;
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t good = 0, good_tokens = 0;
  for (const RequestRecord& r : result.records) {
    if (!r.ok) {
      ++s.failed;
      if (s.errors.size() < 5) s.errors.push_back(r.error);
      continue;
    }
    ++s.completed;
    s.prompt_tokens += r.prompt_tokens;
    s.output_tokens += r.output_tokens;
    if (r.cached_tokens >= 0) s.cached_tokens = std::max<int64_t>(s.cached_tokens, 0) + r.cached_tokens;
    ttft.push_back(r.ttft_s);
    e2e.push_back(r.e2e_s);
    // Time per output token after the first (vLLM's and MLPerf's definition).
    const double t = r.output_tokens > 1 ? (r.e2e_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1) : 0;
    tpot.push_back(t);
    for (size_t i = 1; i < r.chunk_times_s.size(); ++i) itl.push_back(r.chunk_times_s[i] - r.chunk_times_s[i - 1]);
    if (r.ttft_s <= slo.ttft_s && t <= slo.tpot_s) {
      ++good;
      good_tokens += r.output_tokens;
    }
  }
  s.ttft = Distribute(std::move(ttft));
  s.tpot = Distribute(std::move(tpot));
  s.itl = Distribute(std::move(itl));
  s.e2e = Distribute(std::move(e2e));
  if (s.duration_s > 0) {
    s.request_throughput = static_cast<double>(s.completed) / s.duration_s;
    s.output_throughput = static_cast<double>(s.output_tokens) / s.duration_s;
    s.total_token_throughput = static_cast<double>(s.prompt_tokens + s.output_tokens) / s.duration_s;
    s.goodput = static_cast<double>(good) / s.duration_s;
    s.goodput_tokens = static_cast<double>(good_tokens) / s.duration_s;
  }
  const int64_t all = s.completed + s.failed;
  s.slo_attainment = all > 0 ? static_cast<double>(good) / static_cast<double>(all) : 0;
  s.slo_met = s.completed > 0 && s.failed == 0 && s.ttft.p99 <= slo.ttft_s && s.tpot.p99 <= slo.tpot_s;
  s.energy_joules = result.energy_joules;
  if (result.energy_joules > 0) s.tokens_per_joule = static_cast<double>(s.output_tokens) / result.energy_joules;
  return s;
}

Json SummaryToJson(const RunSummary& s, bool with_samples) {
  Json j;
  j["label"] = s.label;
  j["concurrency"] = s.concurrency;
  j["request_rate"] = s.request_rate;
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["duration_s"] = s.duration_s;
  j["started_unix_s"] = s.started_unix_s;
  j["request_throughput"] = s.request_throughput;
  j["output_throughput"] = s.output_throughput;
  j["total_token_throughput"] = s.total_token_throughput;
  j["prompt_tokens"] = s.prompt_tokens;
  j["output_tokens"] = s.output_tokens;
  j["cached_tokens"] = s.cached_tokens;
  j["ttft_s"] = DistributionJson(s.ttft, with_samples);
  j["tpot_s"] = DistributionJson(s.tpot, with_samples);
  j["itl_s"] = DistributionJson(s.itl, with_samples);
  j["e2e_s"] = DistributionJson(s.e2e, with_samples);
  j["slo"] = {{"ttft_s", s.slo.ttft_s}, {"tpot_s", s.slo.tpot_s}};
  j["goodput_requests_per_s"] = s.goodput;
  j["goodput_output_tokens_per_s"] = s.goodput_tokens;
  j["slo_attainment"] = s.slo_attainment;
  j["slo_met"] = s.slo_met;
  j["energy_joules"] = s.energy_joules;
  j["output_tokens_per_joule"] = s.tokens_per_joule;
  j["errors"] = s.errors;
  return j;
}

Result<RunSummary> SummaryFromJson(const Json& j) {
  if (!j.is_object() || !j.contains("label")) return InvalidArgumentError("not a bench run summary");
  RunSummary s;
  auto num = [&](const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0; };
  s.label = j["label"].is_string() ? j["label"].get<std::string>() : "";
  s.concurrency = num("concurrency");
  s.request_rate = num("request_rate");
  s.completed = static_cast<int64_t>(num("completed"));
  s.failed = static_cast<int64_t>(num("failed"));
  s.duration_s = num("duration_s");
  s.started_unix_s = num("started_unix_s");
  s.request_throughput = num("request_throughput");
  s.output_throughput = num("output_throughput");
  s.total_token_throughput = num("total_token_throughput");
  s.prompt_tokens = static_cast<int64_t>(num("prompt_tokens"));
  s.output_tokens = static_cast<int64_t>(num("output_tokens"));
  s.cached_tokens = static_cast<int64_t>(num("cached_tokens"));
  s.ttft = DistributionFromJson(j.value("ttft_s", Json()));
  s.tpot = DistributionFromJson(j.value("tpot_s", Json()));
  s.itl = DistributionFromJson(j.value("itl_s", Json()));
  s.e2e = DistributionFromJson(j.value("e2e_s", Json()));
  if (j.contains("slo") && j["slo"].is_object()) {
    s.slo.ttft_s = j["slo"].value("ttft_s", 2.0);
    s.slo.tpot_s = j["slo"].value("tpot_s", 0.1);
  }
  s.goodput = num("goodput_requests_per_s");
  s.goodput_tokens = num("goodput_output_tokens_per_s");
  s.slo_attainment = num("slo_attainment");
  s.slo_met = j.value("slo_met", false);
  s.energy_joules = j.contains("energy_joules") && j["energy_joules"].is_number() ? j["energy_joules"].get<double>() : -1;
  s.tokens_per_joule = j.contains("output_tokens_per_joule") && j["output_tokens_per_joule"].is_number()
                           ? j["output_tokens_per_joule"].get<double>() : -1;
  return s;
}

}  // namespace tokenfab
