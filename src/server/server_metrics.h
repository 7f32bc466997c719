// The server's metrics and their Prometheus rendering: requests by endpoint and status,
// latency histograms (TTFT, inter-token latency, end to end), token counts, and the engine's
// gauges (queue, running, preemptions, KV blocks, prefix-cache hit rate) from its snapshot,
// plus GPU power and energy when NVML is present. Names are listed in the README's metrics
// table. Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/thread_annotations.h"
#include "engine/async_engine.h"
#include "server/gpu_power.h"
#include "server/prometheus.h"

namespace tokenfab {

class ServerMetrics {
 public:
  // `gpu` may be null (no NVML): the GPU metrics are left out.
  explicit ServerMetrics(std::unique_ptr<GpuPowerMonitor> gpu);

  void CountRequest(const std::string& endpoint, int http_status) EXCLUDES(mu_);
  void CountTokens(int64_t prompt, int64_t completion);
  Histogram& ttft() { return ttft_; }
  Histogram& inter_token() { return inter_token_; }
  Histogram& e2e() { return e2e_; }
  // Where the open-connection count comes from (the HTTP server, once started).
  void SetConnectionCounter(std::function<int()> counter) EXCLUDES(mu_);

  std::string Render(const EngineSnapshot& engine) const EXCLUDES(mu_);

 private:
  std::unique_ptr<GpuPowerMonitor> gpu_;
  std::vector<GpuPowerReading> gpu_start_;  // energy at start, for tokens per joule
  mutable Mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_ GUARDED_BY(mu_);
  std::atomic<int64_t> request_prompt_tokens_{0};
  std::atomic<int64_t> request_completion_tokens_{0};
  std::function<int()> connections_ GUARDED_BY(mu_);
  Histogram ttft_, inter_token_, e2e_;
};

}  // namespace tokenfab
