// Engine: one model on one backend with its paged KV cache and prefix cache, and the step
// loop that runs requests through it — each step schedule (sched/ScheduleStep: a token budget,
// decodes first, prefill chunks after, recompute-preemption under KV pressure) -> build batch
// -> forward -> sample -> stream out.
//
// Two ways to drive it, one loop underneath:
//  - offline: Score and Generate run to completion on the caller's thread (CLI, benchmarks);
//  - online: AddRequest / AbortRequest / Step, called by AsyncEngine's owner thread, which is
//    how the server uses it (engine/async_engine.h).
// Thread-safety: one thread uses an Engine at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "kv/block_pool.h"
#include "kv/kv_cache.h"
#include "kv/kv_events.h"
#include "kv/prefix_cache.h"
#include "model/causal_lm.h"
#include "sched/scheduler.h"

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
  int32_t max_prefill_tokens_with_decodes = 0;  // SchedulerConfig's; 0: no cap
  int32_t max_seqs = 256;          // sequences running at once
  bool enable_prefix_caching = true;
  std::string model_id;            // names the model in block hashes; "" = model_dir
  std::optional<SipKey> block_hash_key;  // the deployment's secret; unset = random per process

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

struct GenerationResult {
  std::vector<SampledToken> tokens;
  FinishReason finish_reason = FinishReason::kLength;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0;     // tokens prefilled (recomputed ones included)
  int64_t generated_tokens = 0;
  int64_t prefix_query_tokens = 0;  // prompt tokens looked up in the prefix cache
  int64_t prefix_hit_tokens = 0;    // ... and found there
  double busy_seconds = 0;          // time spent in steps
  int64_t device_sampled_tokens = 0;  // of generated_tokens, drawn by the backend's Sample op
};

// What the last Step ran: the shape of its forward pass, for a per-step log that shows how a
// serving load turns into batches (how many decodes ride beside how many prompt tokens).
struct StepRecord {
  int32_t decodes = 0;         // one-token chunks
  int32_t prompt_chunks = 0;   // chunks of more than one token
  int32_t prompt_tokens = 0;   // their tokens
  int64_t context_tokens = 0;  // KV positions the step attends over, summed over chunks
  int32_t admitted = 0;
  int32_t preempted = 0;
  double seconds = 0;  // schedule, forward, sample and deliver
  double forward_seconds = 0;  // of which the model's forward pass (launches, the device, sync)
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const EngineConfig& config);
  ~Engine();

  const ModelConfig& model_config() const { return model_->config(); }
  const EngineConfig& config() const { return config_; }
  const EngineStats& stats() const { return stats_; }
  const StepRecord& last_step() const { return last_step_; }

  // Log-probabilities of a token sequence under the model (teacher forcing).
  Result<ScoreResult> Score(std::span<const int32_t> tokens);

  // Runs every request to completion; results in request order.
  Result<std::vector<GenerationResult>> Generate(const std::vector<GenerationRequest>& requests);

  // --- The online interface (one owner thread). ---
  // The longest sequence (prompt plus output) the engine can hold: the KV cache's capacity
  // less pinned blocks, and the model's position limit.
  int64_t max_sequence_tokens() const;
  // Checks and queues a request under a caller-chosen unique id; outputs go to `on_output`.
  // InvalidArgument for bad tokens or parameters, ResourceExhausted if it can never fit.
  Status AddRequest(int64_t id, EngineRequest request, OutputCallback on_output);
  // Ends a request now (its KV freed at once); its callback gets a kCancelled output. Unknown
  // or finished ids are ignored.
  void AbortRequest(int64_t id);
  // Fails every request with `status` (after a step error, or at shutdown).
  void AbortAll(const Status& status);
  bool HasWork() const { return !running_.empty() || !waiting_.empty(); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int64_t waiting_prefill_tokens() const;
  // One step: schedule, forward, sample, deliver outputs. An error here is the engine's
  // (backend failure); requests' own errors go to their callbacks.
  Status Step();

  // The parts, for benchmarks and tests that drive the forward pass directly.
  CausalLm& model() { return *model_; }
  KvCache& kv_cache() { return *kv_cache_; }
  BlockPool& block_pool() { return *block_pool_; }
  PrefixCache& prefix_cache() { return *prefix_cache_; }
  KvEventLog& kv_events() { return kv_events_; }

 private:
  struct Sequence;
  class Kv;
  Engine();
  Status CheckTokens(std::span<const int32_t> tokens) const;
  Status CheckRequest(const EngineRequest& request) const;
  // Runs the forward pass and samples the next token of every sequence that has a logits row:
  // the one place that turns logits into tokens. Rows without a logit bias, penalties or top
  // log-probs (greedy or not: temperature, top-k, top-p, min-p, seeded) are sampled by the
  // backend on the device and only their token ids come back; only the other rows' logits come
  // to the host, for the Sampler. A row's path depends on its request alone, never its batch.
  // `after_forward` runs between the two (the step's bookkeeping of computed KV).
  Status ForwardAndSample(const ForwardBatch& batch, std::span<Sequence* const> rows,
                          const std::function<void()>& after_forward);
  // Appends a sampled token and applies the stop conditions.
  void AcceptToken(Sequence* s, SampledToken token);
  void RegisterComputedBlocks(Sequence* s);
  void Finish(Sequence* s, FinishReason reason, Status status);
  void Deliver(Sequence* s);

  EngineConfig config_;
  SchedulerConfig sched_config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<CausalLm> model_;
  std::unique_ptr<KvCache> kv_cache_;
  std::unique_ptr<BlockPool> block_pool_;
  KvEventLog kv_events_;
  std::unique_ptr<PrefixCache> prefix_cache_;
  std::unique_ptr<BlockHasher> hasher_;
  std::unique_ptr<Kv> kv_;
  EngineStats stats_;
  StepRecord last_step_;

  std::map<int64_t, std::unique_ptr<Sequence>> seqs_;  // every live request
  std::vector<SchedSeq*> running_, waiting_;
  uint64_t next_arrival_ = 0;
  std::vector<float> logits_;
  std::vector<DeviceSamplingParams> device_sampling_;
  std::vector<int32_t> host_rows_;  // this step's logit rows sampled on the host
  std::vector<SampledToken> host_samples_;
  std::vector<int32_t> sampled_tokens_;
  std::vector<float> sampled_logprobs_;
};

}  // namespace tokenfab
