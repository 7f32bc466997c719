// Engine: one model on one backend with its paged KV cache, and the step loop that runs
// requests through it — each step a token budget filled with decode tokens first and prefill
// chunks after, KV blocks allocated as sequences grow, recompute-preemption when the cache is
// full.
//
// This is the offline (batch) interface used by the CLI and benchmarks: Score and Generate
// run to completion. Thread-safety: one thread uses an Engine at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/sampler.h"
#include "kv/block_pool.h"
#include "kv/kv_cache.h"
#include "model/causal_lm.h"

namespace tokenfab {

struct EngineConfig {
  std::string model_dir;
  std::string device = "cpu";
  bool dummy_weights = false;      // seeded random weights instead of the checkpoint
  uint64_t dummy_seed = 0;
  int num_threads = 0;             // CPU backend threads; 0 = all hardware threads
  int32_t block_size = 16;         // tokens per KV block
  int32_t num_kv_blocks = 0;       // 0: as many as kv_cache_bytes holds
  uint64_t kv_cache_bytes = 0;     // 0: 90% of the device memory left after the weights,
                                   // keeping 2 GiB free (1 GiB at most on the CPU)
  int32_t max_batch_tokens = 2048; // per-step token budget (prefill is chunked to fit)
  int32_t max_seqs = 256;          // sequences running at once

  Status Validate() const;
};

struct ScoreResult {
  std::vector<float> next_logprob;  // [n - 1]: log P(token[i + 1] | tokens[0..i])
  std::vector<int32_t> argmax;      // [n]: the most likely token after position i
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  StopConditions stop;
};

enum class FinishReason { kLength, kStop };

struct GenerationResult {
  std::vector<SampledToken> tokens;
  FinishReason finish_reason = FinishReason::kLength;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0;     // tokens prefilled (recomputed ones included)
  int64_t generated_tokens = 0;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const EngineConfig& config);
  ~Engine();

  const ModelConfig& model_config() const { return model_->config(); }
  const EngineConfig& config() const { return config_; }
  const EngineStats& stats() const { return stats_; }

  // Log-probabilities of a token sequence under the model (teacher forcing).
  Result<ScoreResult> Score(std::span<const int32_t> tokens);

  // Runs every request to completion; results in request order.
  Result<std::vector<GenerationResult>> Generate(const std::vector<GenerationRequest>& requests);

  // The parts, for benchmarks and tests that drive the forward pass directly.
  CausalLm& model() { return *model_; }
  KvCache& kv_cache() { return *kv_cache_; }
  BlockPool& block_pool() { return *block_pool_; }

 private:
  struct Sequence;
  Engine() = default;
  Status CheckTokens(std::span<const int32_t> tokens) const;

  EngineConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<CausalLm> model_;
  std::unique_ptr<KvCache> kv_cache_;
  std::unique_ptr<BlockPool> block_pool_;
  Sampler sampler_;
  EngineStats stats_;
};

}  // namespace tokenfab
