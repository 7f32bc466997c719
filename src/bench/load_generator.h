// The load generator: runs a workload's sessions against an OpenAI-compatible endpoint
// (tokenfab serve, llama.cpp's llama-server, vLLM, ...) with streaming requests, either
// closed-loop (a fixed number of sessions in flight) or open-loop (sessions arriving as a
// Poisson process at a given rate), and records each request's timings: time to first token,
// the arrival time of every streamed token chunk, end to end, token counts from usage.
// A session's turns run one after another, each carrying the conversation so far.
// Thread-safety: RunLoad is a blocking call; it uses its own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/workload.h"

namespace tokenfab {

struct LoadConfig {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string path_prefix;   // before /v1 (a proxy's prefix), usually ""
  std::string model;         // "" = whatever /v1/models lists first
  std::string api_key;
  bool chat = true;          // /v1/chat/completions, else /v1/completions
  int32_t concurrency = 0;   // closed loop: sessions in flight (used when request_rate == 0)
  double request_rate = 0;   // open loop: sessions per second (Poisson); 0 = closed loop
  int32_t max_concurrency = 1024;  // open loop: sessions in flight at most
  bool ignore_eos = true;    // force the asked output lengths
  double temperature = 0;
  double top_p = 1;          // sent when below 1
  std::chrono::milliseconds request_timeout{600000};
  uint64_t seed = 0;
  Status Validate() const;
};

struct RequestRecord {
  int32_t session = 0;
  int32_t turn = 0;
  double start_s = 0;          // since the run started
  double ttft_s = -1;          // first content; -1 if none
  double e2e_s = 0;
  std::vector<double> chunk_times_s;  // since the request started, one per content chunk
  int64_t prompt_tokens = 0;   // from usage (0 if the server sent none)
  int64_t output_tokens = 0;   // from usage, else the number of content chunks
  int64_t cached_tokens = -1;  // usage.prompt_tokens_details.cached_tokens when sent
  bool ok = false;
  int http_status = 0;
  std::string error;
};

struct LoadResult {
  std::vector<RequestRecord> records;
  double duration_s = 0;
  double started_unix_s = 0;   // wall-clock start of the measured run (to match server logs)
  double energy_joules = -1;   // NVML energy of all GPUs during the run; -1 without NVML
};

// `on_done` (optional) is called after each request, from worker threads.
Result<LoadResult> RunLoad(const LoadConfig& config, const std::vector<Session>& sessions,
                           const std::function<void(const RequestRecord&)>& on_done = nullptr);

// The first model id /v1/models lists.
Result<std::string> DiscoverModel(const LoadConfig& config);

}  // namespace tokenfab
