#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "backend/backend_registry.h"
#include "base/logging.h"
#include "base/thread_pool.h"
#include "engine/batch_builder.h"
#include "model/checkpoint.h"

namespace tokenfab {

struct Engine::Sequence {
  SchedSeq sched;               // id, order keys and token counts, as the scheduler sees them
  EngineRequest request;
  OutputCallback on_output;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int32_t prompt_len = 0;
  std::vector<BlockId> blocks;  // KV of tokens [0, sched.num_computed), and room to grow
  std::vector<BlockHash> hashes;  // the block-hash chain of tokens' full blocks
  size_t num_registered = 0;    // blocks [0, num_registered) are offered to the prefix cache
  uint64_t seed = 0;
  int32_t num_generated = 0;
  std::vector<SampledToken> pending;  // generated since the last output
  int32_t cached_prompt_tokens = -1;  // prefix-cache hit on first admission; -1 before
  bool pinned = false;
  std::chrono::steady_clock::time_point first_scheduled{};  // epoch until a step runs it

  std::span<const int32_t> prompt() const { return {tokens.data(), size_t(prompt_len)}; }
  std::span<const int32_t> output() const {
    return {tokens.data() + prompt_len, tokens.size() - prompt_len};
  }
};

// The scheduler's KvBudget over this engine's block pool and prefix cache.
class Engine::Kv : public KvBudget {
 public:
  explicit Kv(Engine* engine) : e_(engine) {}

  int32_t AcquirePrefix(const SchedSeq& s) override {
    Sequence& q = Seq(s);
    CHECK(q.blocks.empty());
    if (!e_->config_.enable_prefix_caching) return 0;
    const int32_t bs = e_->config_.block_size;
    e_->hasher_->ExtendChain(q.tokens, bs, q.request.cache_salt, &q.hashes);
    // The last token is always computed: its logits give the next token.
    const size_t usable = std::min(q.hashes.size(), (q.tokens.size() - 1) / bs);
    q.blocks = e_->prefix_cache_->Acquire(std::span(q.hashes).first(usable));
    q.num_registered = q.blocks.size();
    const int32_t hit = static_cast<int32_t>(q.blocks.size()) * bs;
    e_->stats_.prefix_query_tokens += static_cast<int64_t>(q.tokens.size());
    e_->stats_.prefix_hit_tokens += hit;
    return hit;
  }

  bool Reserve(const SchedSeq& s, int32_t num_tokens) override {
    return EnsureBlocks(*e_->block_pool_, e_->config_.block_size, num_tokens, &Seq(s).blocks).ok();
  }

  void Release(const SchedSeq& s) override {
    Sequence& q = Seq(s);
    ReleaseBlocks(*e_->block_pool_, &q.blocks);
    q.num_registered = 0;
  }

 private:
  Sequence& Seq(const SchedSeq& s) { return *e_->seqs_.at(s.id); }
  Engine* e_;
};

Status EngineConfig::Validate() const {
  if (block_size < 1 || block_size > 1024) {
    return InvalidArgumentError("block size must be in [1, 1024]");
  }
  if (max_batch_tokens < 1) return InvalidArgumentError("max batch tokens must be >= 1");
  if (max_prefill_tokens_with_decodes < 0) {
    return InvalidArgumentError("prompt tokens beside decodes must be >= 0 (0: no cap)");
  }
  if (max_seqs < 1) return InvalidArgumentError("max seqs must be >= 1");
  if (num_kv_blocks < 0) return InvalidArgumentError("KV block count must be >= 0");
  return Status::Ok();
}

Engine::Engine() = default;
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config) {
  TF_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Engine> engine(new Engine);
  engine->config_ = config;
  engine->sched_config_.max_batch_tokens = config.max_batch_tokens;
  engine->sched_config_.max_prefill_tokens_with_decodes = config.max_prefill_tokens_with_decodes;
  engine->sched_config_.max_seqs = config.max_seqs;
  TF_ASSIGN_OR_RETURN(ModelConfig model_config, LoadModelConfig(config.model_dir));
  BackendOptions options;
  options.num_threads = config.num_threads;
  TF_ASSIGN_OR_RETURN(engine->backend_, CreateBackend(config.device, options));
  Backend& backend = *engine->backend_;

  ModelWeights weights;
  if (config.dummy_weights) {
    TF_ASSIGN_OR_RETURN(weights, MakeDummyWeights(model_config, config.dummy_seed, backend));
  } else {
    TF_ASSIGN_OR_RETURN(auto checkpoint, Checkpoint::Open(config.model_dir));
    TF_ASSIGN_OR_RETURN(weights, LoadWeights(model_config, *checkpoint, backend));
  }
  TF_ASSIGN_OR_RETURN(engine->model_,
                      CausalLm::Create(model_config, std::move(weights), &backend));

  KvCacheLayout layout;
  layout.num_layers = static_cast<int>(model_config.num_layers);
  layout.num_kv_heads = static_cast<int>(model_config.num_kv_heads);
  layout.head_dim = static_cast<int>(model_config.head_dim);
  layout.block_size = config.block_size;
  layout.dtype = backend.activation_dtype();
  layout.num_blocks = config.num_kv_blocks;
  if (layout.num_blocks == 0) {
    uint64_t bytes = config.kv_cache_bytes;
    if (bytes == 0) {
      constexpr uint64_t kHeadroom = 2ull << 30;
      const uint64_t free_bytes = backend.FreeMemoryBytes();
      bytes = free_bytes > kHeadroom ? (free_bytes - kHeadroom) / 10 * 9 : 0;
      if (backend.name() == "cpu") bytes = std::min<uint64_t>(bytes, 1ull << 30);
    }
    layout.num_blocks =
        static_cast<int>(std::min<uint64_t>(bytes / layout.BytesPerBlock(), 1 << 30));
    if (layout.num_blocks == 0) {
      return ResourceExhaustedError("no memory left for the KV cache after the weights");
    }
  }
  TF_ASSIGN_OR_RETURN(engine->kv_cache_, KvCache::Create(backend, layout));
  engine->block_pool_ = std::make_unique<BlockPool>(layout.num_blocks);
  engine->prefix_cache_ = std::make_unique<PrefixCache>(engine->block_pool_.get(),
                                                        config.block_size, &engine->kv_events_);
  engine->hasher_ = std::make_unique<BlockHasher>(
      config.block_hash_key.value_or(BlockHasher::RandomKey()),
      config.model_id.empty() ? config.model_dir : config.model_id);
  engine->kv_ = std::make_unique<Kv>(engine.get());
  TF_RETURN_IF_ERROR(engine->model_->Reserve(config.max_batch_tokens, config.max_seqs));
  return engine;
}

Status Engine::CheckTokens(std::span<const int32_t> tokens) const {
  if (tokens.empty()) return InvalidArgumentError("empty token list");
  const int64_t vocab = model_config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      return InvalidArgumentError("token id " + std::to_string(tokens[i]) + " at index " +
                                  std::to_string(i) + " is out of range [0, " +
                                  std::to_string(vocab) + ")");
    }
  }
  return Status::Ok();
}

Result<ScoreResult> Engine::Score(std::span<const int32_t> tokens) {
  TF_RETURN_IF_ERROR(CheckTokens(tokens));
  const int32_t n = static_cast<int32_t>(tokens.size());
  const int32_t bs = config_.block_size;
  std::vector<BlockId> blocks;
  Status status = EnsureBlocks(*block_pool_, bs, n, &blocks);
  if (!status.ok()) {
    return ResourceExhaustedError("a sequence of " + std::to_string(n) +
                                  " tokens does not fit in the KV cache (" +
                                  std::to_string(block_pool_->num_blocks()) + " blocks of " +
                                  std::to_string(bs) + ")");
  }
  ScoreResult result;
  const int64_t vocab = model_config().vocab_size;
  // All rows want logits; cap the chunk so the logits buffer stays modest.
  const int32_t chunk = std::min(config_.max_batch_tokens, 256);
  for (int32_t start = 0; start < n && status.ok(); start += chunk) {
    const int32_t len = std::min(chunk, n - start);
    SequenceChunk c{tokens.subspan(start, len), start, blocks, LogitRows::kAll};
    const ForwardBatch batch = BuildForwardBatch({&c, 1}, bs);
    status = model_->Forward(batch, kv_cache_->tensors(), &logits_);
    for (int32_t i = 0; i < len && status.ok(); ++i) {
      const std::span<const float> row(logits_.data() + i * vocab, vocab);
      result.argmax.push_back(
          static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin()));
      if (start + i + 1 < n) {
        const int32_t next = tokens[start + i + 1];
        result.next_logprob.push_back(static_cast<float>(row[next] - LogSumExp(row)));
      }
    }
  }
  ReleaseBlocks(*block_pool_, &blocks);
  TF_RETURN_IF_ERROR(status);
  return result;
}

int64_t Engine::max_sequence_tokens() const {
  int64_t n = static_cast<int64_t>(block_pool_->num_blocks() - prefix_cache_->num_pinned()) *
              config_.block_size;
  if (model_config().max_position_embeddings > 0) {
    n = std::min(n, model_config().max_position_embeddings);
  }
  return n;
}

Status Engine::CheckRequest(const EngineRequest& r) const {
  TF_RETURN_IF_ERROR(CheckTokens(r.prompt).WithContext("prompt"));
  TF_RETURN_IF_ERROR(r.sampling.Validate().WithContext("sampling"));
  for (const auto& [token, bias] : r.sampling.logit_bias) {
    if (token >= model_config().vocab_size) {
      return InvalidArgumentError("sampling: logit_bias token id " + std::to_string(token) +
                                  " is outside the vocabulary (" +
                                  std::to_string(model_config().vocab_size) + ")");
    }
  }
  TF_RETURN_IF_ERROR(r.stop.Validate().WithContext("stop"));
  const int64_t capacity =
      static_cast<int64_t>(block_pool_->num_blocks() - prefix_cache_->num_pinned()) *
      config_.block_size;
  if (static_cast<int64_t>(r.prompt.size()) + r.stop.max_tokens > capacity) {
    return ResourceExhaustedError("prompt plus max_tokens (" +
                                  std::to_string(r.prompt.size() + r.stop.max_tokens) +
                                  ") exceeds the KV cache (" + std::to_string(capacity) +
                                  " tokens)");
  }
  return Status::Ok();
}

Status Engine::AddRequest(int64_t id, EngineRequest request, OutputCallback on_output) {
  CHECK(seqs_.count(id) == 0) << "request id " << id << " is in use";
  TF_RETURN_IF_ERROR(CheckRequest(request));
  auto s = std::make_unique<Sequence>();
  s->sched.id = id;
  s->sched.priority = request.priority;
  s->sched.arrival = next_arrival_++;
  s->tokens = request.prompt;
  s->prompt_len = static_cast<int32_t>(request.prompt.size());
  s->sched.num_tokens = s->prompt_len;
  if (request.sampling.seed.has_value()) {
    s->seed = *request.sampling.seed;
  } else {
    std::random_device entropy;
    s->seed = static_cast<uint64_t>(entropy()) << 32 | entropy();
  }
  s->request = std::move(request);
  s->on_output = std::move(on_output);
  waiting_.push_back(&s->sched);
  seqs_[id] = std::move(s);
  return Status::Ok();
}

int64_t Engine::waiting_prefill_tokens() const {
  int64_t n = 0;
  for (const SchedSeq* s : waiting_) n += s->num_uncomputed();
  return n;
}

void Engine::Finish(Sequence* s, FinishReason reason, Status status) {
  for (std::vector<SchedSeq*>* list : {&running_, &waiting_}) {
    const auto it = std::find(list->begin(), list->end(), &s->sched);
    if (it != list->end()) list->erase(it);
  }
  ReleaseBlocks(*block_pool_, &s->blocks);
  RequestOutput out;
  out.id = s->sched.id;
  out.tokens = std::move(s->pending);
  out.finished = true;
  out.finish_reason = reason;
  out.status = std::move(status);
  out.prompt_tokens = s->prompt_len;
  out.cached_prompt_tokens = std::max(0, s->cached_prompt_tokens);
  out.first_scheduled = s->first_scheduled;
  OutputCallback callback = std::move(s->on_output);
  seqs_.erase(s->sched.id);  // s is gone
  callback(std::move(out));
}

void Engine::Deliver(Sequence* s) {
  if (s->pending.empty()) return;
  RequestOutput out;
  out.id = s->sched.id;
  out.tokens = std::move(s->pending);
  s->pending.clear();
  out.prompt_tokens = s->prompt_len;
  out.cached_prompt_tokens = std::max(0, s->cached_prompt_tokens);
  out.first_scheduled = s->first_scheduled;
  s->on_output(std::move(out));
}

void Engine::AbortRequest(int64_t id) {
  const auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  Finish(it->second.get(), FinishReason::kCancelled, Status::Ok());
}

void Engine::AbortAll(const Status& status) {
  while (!seqs_.empty()) Finish(seqs_.begin()->second.get(), FinishReason::kCancelled, status);
}

void Engine::RegisterComputedBlocks(Sequence* s) {
  if (!config_.enable_prefix_caching) return;
  const int32_t bs = config_.block_size;
  const size_t full = static_cast<size_t>(s->sched.num_computed / bs);
  if (full <= s->num_registered) return;
  hasher_->ExtendChain(std::span(s->tokens).first(full * bs), bs, s->request.cache_salt,
                       &s->hashes);
  prefix_cache_->Insert(std::span(s->hashes).first(full), s->blocks, s->num_registered, s->tokens,
                        s->request.cache_salt);
  s->num_registered = full;
  if (s->request.pin_prefix && !s->pinned && s->sched.num_computed >= s->prompt_len) {
    s->pinned = true;
    const size_t prompt_blocks = static_cast<size_t>(s->prompt_len / bs);
    const Status pinned = prefix_cache_->Pin(std::span(s->hashes).first(prompt_blocks));
    if (!pinned.ok()) LOG(WARNING) << "request " << s->sched.id << ": " << pinned.message();
    else LOG(INFO) << "pinned a prefix of " << prompt_blocks * bs << " tokens";
  }
}

void Engine::AcceptToken(Sequence* s, SampledToken sampled) {
  const int32_t token = sampled.token;
  s->pending.push_back(std::move(sampled));
  s->tokens.push_back(token);
  ++s->sched.num_tokens;
  ++s->num_generated;
  ++stats_.generated_tokens;
  const StopConditions& stop = s->request.stop;
  const std::vector<int64_t>& eos = model_config().eos_token_ids;
  const bool is_eos = !stop.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end();
  const bool is_stop = std::find(stop.stop_token_ids.begin(), stop.stop_token_ids.end(), token) !=
                       stop.stop_token_ids.end();
  if (is_eos || is_stop) {
    Finish(s, FinishReason::kStop, Status::Ok());
  } else if (s->num_generated >= stop.max_tokens ||
             static_cast<int64_t>(s->tokens.size()) >= max_sequence_tokens()) {
    Finish(s, FinishReason::kLength, Status::Ok());
  } else {
    Deliver(s);
  }
}

namespace {

// Whether the backend's Sample op can draw this request's tokens: it applies no logit bias or
// penalties and reports no alternatives (backend/device_sampling.h has the rule; the host
// Sampler applies the same one after the bias and penalties).
bool SamplesOnDevice(const SamplingParams& p) {
  return p.num_logprobs <= 0 && p.repetition_penalty == 1.0 && p.presence_penalty == 0.0 &&
         p.frequency_penalty == 0.0 && p.logit_bias.empty();
}

}  // namespace

Status Engine::ForwardAndSample(const ForwardBatch& batch, std::span<Sequence* const> rows,
                                const std::function<void()>& after_forward) {
  // Each row's path depends on its own request only, so a request's tokens never depend on
  // what else shares its batch.
  host_rows_.clear();
  device_sampling_.assign(rows.size(), DeviceSamplingParams{});  // host rows: greedy, unused
  for (size_t row = 0; row < rows.size(); ++row) {
    const Sequence* s = rows[row];
    const SamplingParams& p = s->request.sampling;
    if (!SamplesOnDevice(p)) {
      host_rows_.push_back(static_cast<int32_t>(row));
      continue;
    }
    device_sampling_[row] = SamplingRule(p, s->seed, s->num_generated);
  }
  const bool any_device = host_rows_.size() < rows.size();
  ForwardOutputs out;
  if (any_device) {
    out.sampling = device_sampling_;
    out.tokens = &sampled_tokens_;
    out.token_logprobs = &sampled_logprobs_;
  }
  if (!host_rows_.empty()) {
    out.logits = &logits_;
    if (any_device) out.logit_rows_to_host = host_rows_;
  }
  const auto forward_start = std::chrono::steady_clock::now();
  TF_RETURN_IF_ERROR(model_->Forward(batch, kv_cache_->tensors(), out));
  last_step_.forward_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - forward_start).count();
  after_forward();
  stats_.device_sampled_tokens += static_cast<int64_t>(rows.size() - host_rows_.size());
  // Sample every host row before accepting any token (AcceptToken may finish a sequence), in
  // parallel: a row costs 2-4 ms at a 128k vocabulary (workstation). Rows are independent, so
  // the tokens do not depend on the thread.
  const int64_t vocab = model_config().vocab_size;
  host_samples_.assign(host_rows_.size(), SampledToken{});
  ThreadPool::Default().ParallelFor(static_cast<int64_t>(host_rows_.size()), [&](int64_t begin,
                                                                                int64_t end) {
    thread_local Sampler sampler;  // scratch per thread
    for (int64_t i = begin; i < end; ++i) {
      const Sequence* s = rows[host_rows_[i]];
      const std::span<const float> row_logits(logits_.data() + i * vocab, vocab);
      host_samples_[i] = sampler.Sample(row_logits, s->request.sampling, s->prompt(), s->output(),
                                        s->seed, s->num_generated);
    }
  });
  size_t next_host = 0;
  for (size_t row = 0; row < rows.size(); ++row) {
    SampledToken sampled;
    if (next_host < host_rows_.size() && host_rows_[next_host] == static_cast<int32_t>(row)) {
      sampled = std::move(host_samples_[next_host++]);
    } else {
      sampled.token = sampled_tokens_[row];
      sampled.logprob = sampled_logprobs_[row];
    }
    AcceptToken(rows[row], std::move(sampled));  // may finish the sequence
  }
  return Status::Ok();
}

Status Engine::Step() {
  const auto start = std::chrono::steady_clock::now();
  StepPlan plan = ScheduleStep(sched_config_, &running_, &waiting_, kv_.get());
  last_step_ = StepRecord{};
  last_step_.admitted = static_cast<int32_t>(plan.admitted.size());
  last_step_.preempted = static_cast<int32_t>(plan.preempted.size());
  for (const SchedSeq* p : plan.preempted) {
    ++stats_.preemptions;
    LOG(INFO) << "preempted request " << p->id << " (KV cache full: " << block_pool_->num_free()
              << " of " << block_pool_->num_blocks() << " blocks free, " << running_.size()
              << " running); it will be recomputed";
  }
  for (const SchedSeq* a : plan.admitted) {
    Sequence& q = *seqs_.at(a->id);
    if (q.cached_prompt_tokens < 0) q.cached_prompt_tokens = std::min(a->num_computed, q.prompt_len);
  }
  if (plan.empty()) {
    if (running_.empty() && !waiting_.empty()) {
      // Not even the head of the queue fits alone (pinned blocks took the room): fail it
      // rather than spin.
      Finish(seqs_.at(waiting_.front()->id).get(), FinishReason::kLength,
             ResourceExhaustedError("the request does not fit in the KV cache next to the "
                                    "pinned prefixes"));
    }
    return Status::Ok();
  }

  const int32_t bs = config_.block_size;
  std::vector<SequenceChunk> chunks;
  std::vector<Sequence*> scheduled;
  chunks.reserve(plan.chunks.size());
  // One-token chunks (decodes) lead the batch, so that a backend can run their attention apart
  // from the prefill chunks' (AttentionMetadata::num_leading_decodes).
  std::stable_partition(plan.chunks.begin(), plan.chunks.end(),
                        [](const ScheduledChunk& c) { return c.num_tokens == 1; });
  for (const ScheduledChunk& c : plan.chunks) {
    Sequence* s = seqs_.at(c.seq->id).get();
    if (s->first_scheduled == std::chrono::steady_clock::time_point{}) s->first_scheduled = start;
    const int32_t done = s->sched.num_computed;
    const bool completes = done + c.num_tokens == static_cast<int32_t>(s->tokens.size());
    chunks.push_back({std::span<const int32_t>(s->tokens).subspan(done, c.num_tokens), done,
                      s->blocks, completes ? LogitRows::kLast : LogitRows::kNone});
    scheduled.push_back(s);
    if (c.num_tokens == 1) {
      ++last_step_.decodes;
    } else {
      ++last_step_.prompt_chunks;
      last_step_.prompt_tokens += c.num_tokens;
    }
    last_step_.context_tokens += done + c.num_tokens;
  }
  const ForwardBatch batch = BuildForwardBatch(chunks, bs);
  std::vector<Sequence*> rows;  // the sequences with a logits row, in row order
  for (size_t i = 0; i < scheduled.size(); ++i) {
    if (chunks[i].logits != LogitRows::kNone) rows.push_back(scheduled[i]);
  }
  // Once the forward pass has written this step's KV: count it, and offer newly full blocks to
  // the prefix cache (before sampling may finish sequences).
  std::vector<int32_t> chunk_tokens;
  for (const SequenceChunk& c : chunks) chunk_tokens.push_back(static_cast<int32_t>(c.tokens.size()));
  const auto account = [&] {
    for (size_t i = 0; i < scheduled.size(); ++i) {
      Sequence* s = scheduled[i];
      const int32_t n = chunk_tokens[i];
      if (s->sched.num_computed < s->prompt_len) {
        stats_.prompt_tokens += std::min(n, s->prompt_len - s->sched.num_computed);
      }
      s->sched.num_computed += n;
      RegisterComputedBlocks(s);
    }
  };
  ++stats_.steps;
  const Status status = ForwardAndSample(batch, rows, account);
  last_step_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats_.busy_seconds += last_step_.seconds;
  return status;
}

Result<std::vector<GenerationResult>> Engine::Generate(
    const std::vector<GenerationRequest>& requests) {
  CHECK(!HasWork()) << "Generate while online requests are in flight";
  auto engine_request = [&](size_t i) {
    EngineRequest r;
    r.prompt = requests[i].prompt;
    r.sampling = requests[i].sampling;
    r.stop = requests[i].stop;
    return r;
  };
  for (size_t i = 0; i < requests.size(); ++i) {
    TF_RETURN_IF_ERROR(CheckRequest(engine_request(i)).WithContext("request " + std::to_string(i)));
  }
  std::vector<GenerationResult> results(requests.size());
  Status failure;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto collect = [&results, &failure, i](RequestOutput&& out) {
      for (SampledToken& t : out.tokens) results[i].tokens.push_back(std::move(t));
      if (out.finished) results[i].finish_reason = out.finish_reason;
      if (!out.status.ok() && failure.ok()) {
        failure = out.status.WithContext("request " + std::to_string(i));
      }
    };
    TF_RETURN_IF_ERROR(AddRequest(static_cast<int64_t>(i), engine_request(i), collect));
  }
  while (HasWork()) {
    const Status status = Step();
    if (!status.ok()) {
      AbortAll(status);
      return status;
    }
  }
  TF_RETURN_IF_ERROR(failure);
  return results;
}

}  // namespace tokenfab
