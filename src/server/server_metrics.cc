#include "server/server_metrics.h"

namespace tokenfab {

ServerMetrics::ServerMetrics(std::unique_ptr<GpuPowerMonitor> gpu)
    : gpu_(std::move(gpu)),
      ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
             20, 40, 80}),
      inter_token_({0.001, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15,
                    0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}),
      e2e_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960}) {
  if (gpu_) gpu_start_ = gpu_->Read();
}

void ServerMetrics::CountRequest(const std::string& endpoint, int http_status) {
  MutexLock lock(&mu_);
  ++requests_[{endpoint, http_status}];
}

void ServerMetrics::SetConnectionCounter(std::function<int()> counter) {
  MutexLock lock(&mu_);
  connections_ = std::move(counter);
}

void ServerMetrics::CountTokens(int64_t prompt, int64_t completion) {
  request_prompt_tokens_ += prompt;
  request_completion_tokens_ += completion;
}

std::string ServerMetrics::Render(const EngineSnapshot& e) const {
  PrometheusWriter w;
  {
    MutexLock lock(&mu_);
    w.Family("tokenfab_requests_total", "counter", "HTTP requests by endpoint and status code.");
    for (const auto& [key, n] : requests_) {
      w.Sample("tokenfab_requests_total",
               "endpoint=\"" + PrometheusLabel(key.first) + "\",code=\"" +
                   std::to_string(key.second) + "\"",
               static_cast<double>(n));
    }
  }
  ttft_.Render(&w, "tokenfab_time_to_first_token_seconds",
               "Time from request arrival to its first generated token.");
  inter_token_.Render(&w, "tokenfab_inter_token_latency_seconds",
                      "Time between successive generated tokens of a request.");
  e2e_.Render(&w, "tokenfab_e2e_request_latency_seconds",
              "Time from request arrival to its last token.");
  auto gauge = [&](const std::string& name, const std::string& help, double v) {
    w.Family(name, "gauge", help);
    w.Sample(name, "", v);
  };
  auto counter = [&](const std::string& name, const std::string& help, double v) {
    w.Family(name, "counter", help);
    w.Sample(name, "", v);
  };
  counter("tokenfab_prompt_tokens_total", "Prompt tokens of finished requests.",
          static_cast<double>(request_prompt_tokens_.load()));
  counter("tokenfab_generation_tokens_total", "Tokens generated for finished requests.",
          static_cast<double>(request_completion_tokens_.load()));
  counter("tokenfab_engine_prefill_tokens_total",
          "Tokens prefilled by the engine (prefix-cache hits excluded, recomputation included).",
          static_cast<double>(e.stats.prompt_tokens));
  counter("tokenfab_engine_generated_tokens_total", "Tokens sampled by the engine.",
          static_cast<double>(e.stats.generated_tokens));
  counter("tokenfab_engine_device_sampled_tokens_total",
          "Of the generated tokens, those sampled on the device (the others, with penalties, "
          "logit_bias or top_logprobs, on the host).",
          static_cast<double>(e.stats.device_sampled_tokens));
  counter("tokenfab_engine_steps_total", "Engine steps (forward passes).",
          static_cast<double>(e.stats.steps));
  counter("tokenfab_engine_busy_seconds_total", "Time the engine spent in steps.",
          e.stats.busy_seconds);
  gauge("tokenfab_num_requests_waiting", "Requests queued, not yet running.", e.num_waiting);
  gauge("tokenfab_num_requests_running", "Requests running in the engine.", e.num_running);
  counter("tokenfab_preemptions_total",
          "Running requests preempted under KV-cache pressure (recomputed later).",
          static_cast<double>(e.stats.preemptions));
  gauge("tokenfab_kv_blocks_capacity", "KV cache blocks in all.", e.kv_blocks_total);
  gauge("tokenfab_kv_blocks_used", "KV cache blocks referenced by requests or pins.",
        e.kv_blocks_used);
  gauge("tokenfab_kv_blocks_free", "KV cache blocks free (evictable cached blocks included).",
        e.kv_blocks_total - e.kv_blocks_used);
  gauge("tokenfab_kv_blocks_cached", "KV cache blocks holding a cached prefix.",
        e.kv_blocks_cached);
  gauge("tokenfab_kv_blocks_pinned", "KV cache blocks of pinned prefixes.", e.kv_blocks_pinned);
  counter("tokenfab_prefix_cache_queries_tokens_total",
          "Tokens looked up in the prefix cache on admission.",
          static_cast<double>(e.stats.prefix_query_tokens));
  counter("tokenfab_prefix_cache_hits_tokens_total", "Tokens found in the prefix cache.",
          static_cast<double>(e.stats.prefix_hit_tokens));
  gauge("tokenfab_prefix_cache_hit_rate", "Prefix-cache hits over queries, in tokens, since start.",
        e.stats.prefix_query_tokens > 0
            ? static_cast<double>(e.stats.prefix_hit_tokens) / e.stats.prefix_query_tokens
            : 0.0);
  gauge("tokenfab_engine_throughput_tokens_per_second",
        "Recent forward throughput (prefill and decode tokens).", e.tokens_per_s);
  {
    MutexLock lock(&mu_);
    if (connections_) gauge("tokenfab_http_connections", "Open HTTP connections.", connections_());
  }
  if (gpu_) {
    const std::vector<GpuPowerReading> now = gpu_->Read();
    w.Family("tokenfab_gpu_power_watts", "gauge", "GPU power draw (NVML).");
    for (const GpuPowerReading& r : now) {
      w.Sample("tokenfab_gpu_power_watts", "gpu=\"" + std::to_string(r.index) + "\"", r.power_watts);
    }
    w.Family("tokenfab_gpu_energy_joules_total", "counter",
             "GPU energy used since the server started (NVML).");
    double joules = 0;
    for (size_t i = 0; i < now.size(); ++i) {
      const double used = now[i].energy_joules - (i < gpu_start_.size() ? gpu_start_[i].energy_joules : 0);
      joules += used;
      w.Sample("tokenfab_gpu_energy_joules_total", "gpu=\"" + std::to_string(now[i].index) + "\"", used);
    }
    gauge("tokenfab_generation_tokens_per_joule",
          "Generated tokens per joule of GPU energy since the server started.",
          joules > 0 ? static_cast<double>(e.stats.generated_tokens) / joules : 0.0);
  }
  return w.text();
}

}  // namespace tokenfab
