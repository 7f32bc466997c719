#include "engine/engine.h"

#include <algorithm>
#include <deque>
#include <random>

#include "backend/backend_registry.h"
#include "base/logging.h"
#include "engine/batch_builder.h"
#include "model/checkpoint.h"

namespace tokenfab {

struct Engine::Sequence {
  size_t index = 0;             // position in the request list
  const GenerationRequest* request = nullptr;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int32_t prompt_len = 0;
  int32_t num_cached = 0;       // tokens whose K/V is in the cache
  std::vector<BlockId> blocks;
  uint64_t seed = 0;
  GenerationResult result;
  bool finished = false;

  int32_t num_uncached() const { return static_cast<int32_t>(tokens.size()) - num_cached; }
  std::span<const int32_t> prompt() const { return {tokens.data(), size_t(prompt_len)}; }
  std::span<const int32_t> output() const {
    return {tokens.data() + prompt_len, tokens.size() - prompt_len};
  }
};

Status EngineConfig::Validate() const {
  if (block_size < 1 || block_size > 1024) {
    return InvalidArgumentError("block size must be in [1, 1024]");
  }
  if (max_batch_tokens < 1) return InvalidArgumentError("max batch tokens must be >= 1");
  if (max_seqs < 1) return InvalidArgumentError("max seqs must be >= 1");
  if (num_kv_blocks < 0) return InvalidArgumentError("KV block count must be >= 0");
  return Status::Ok();
}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config) {
  TF_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Engine> engine(new Engine);
  engine->config_ = config;
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
  std::vector<float> logits;
  const int64_t vocab = model_config().vocab_size;
  // All rows want logits; cap the chunk so the logits buffer stays modest.
  const int32_t chunk = std::min(config_.max_batch_tokens, 256);
  for (int32_t start = 0; start < n && status.ok(); start += chunk) {
    const int32_t len = std::min(chunk, n - start);
    SequenceChunk c{tokens.subspan(start, len), start, blocks, LogitRows::kAll};
    const ForwardBatch batch = BuildForwardBatch({&c, 1}, bs);
    status = model_->Forward(batch, kv_cache_->tensors(), &logits);
    for (int32_t i = 0; i < len && status.ok(); ++i) {
      const std::span<const float> row(logits.data() + i * vocab, vocab);
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

Result<std::vector<GenerationResult>> Engine::Generate(
    const std::vector<GenerationRequest>& requests) {
  const int32_t bs = config_.block_size;
  const int64_t capacity_tokens = static_cast<int64_t>(block_pool_->num_blocks()) * bs;
  std::vector<Sequence> seqs(requests.size());
  std::random_device entropy;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    const std::string which = "request " + std::to_string(i) + ": ";
    TF_RETURN_IF_ERROR(CheckTokens(r.prompt).WithContext(which + "prompt"));
    TF_RETURN_IF_ERROR(r.sampling.Validate().WithContext(which + "sampling"));
    TF_RETURN_IF_ERROR(r.stop.Validate().WithContext(which + "stop"));
    if (static_cast<int64_t>(r.prompt.size()) + r.stop.max_tokens > capacity_tokens) {
      return ResourceExhaustedError(which + "prompt plus max_tokens (" +
                                    std::to_string(r.prompt.size() + r.stop.max_tokens) +
                                    ") exceeds the KV cache (" + std::to_string(capacity_tokens) +
                                    " tokens)");
    }
    Sequence& s = seqs[i];
    s.index = i;
    s.request = &r;
    s.tokens = r.prompt;
    s.prompt_len = static_cast<int32_t>(r.prompt.size());
    s.seed = r.sampling.seed.has_value() ? *r.sampling.seed
                                         : (static_cast<uint64_t>(entropy()) << 32 | entropy());
  }

  std::deque<Sequence*> waiting;
  for (Sequence& s : seqs) waiting.push_back(&s);
  std::vector<Sequence*> running;
  const std::vector<int64_t>& eos = model_config().eos_token_ids;
  std::vector<float> logits;

  auto preempt = [&](Sequence* victim) {
    ReleaseBlocks(*block_pool_, &victim->blocks);
    victim->num_cached = 0;  // recompute: its tokens (prompt + output so far) are prefilled again
    running.erase(std::find(running.begin(), running.end(), victim));
    waiting.push_front(victim);
    ++stats_.preemptions;
    LOG(INFO) << "preempted sequence " << victim->index << " (KV cache full, "
              << block_pool_->num_free() << " blocks free); it will be recomputed";
  };

  while (!running.empty() || !waiting.empty()) {
    std::vector<Sequence*> scheduled;
    std::vector<SequenceChunk> chunks;
    int32_t budget = config_.max_batch_tokens;
    // Running sequences first (decodes and unfinished prefills), oldest first; the newest one
    // is preempted when an older one cannot grow.
    for (size_t i = 0; i < running.size() && budget > 0;) {
      Sequence* s = running[i];
      const int32_t n = std::min(s->num_uncached(), budget);
      if (!EnsureBlocks(*block_pool_, bs, s->num_cached + n, &s->blocks).ok()) {
        Sequence* victim = running.back();
        if (victim == s && i == 0) {
          return InternalError("KV cache cannot hold a single sequence");  // excluded above
        }
        preempt(victim);
        if (victim == s) break;
        continue;  // retry this sequence with the victim's blocks free
      }
      scheduled.push_back(s);
      budget -= n;
      ++i;
    }
    while (budget > 0 && !waiting.empty() &&
           static_cast<int32_t>(running.size()) < config_.max_seqs) {
      Sequence* s = waiting.front();
      const int32_t n = std::min(s->num_uncached(), budget);
      if (!EnsureBlocks(*block_pool_, bs, s->num_cached + n, &s->blocks).ok()) break;
      waiting.pop_front();
      running.push_back(s);
      scheduled.push_back(s);
      budget -= n;
    }
    if (scheduled.empty()) return InternalError("scheduler made no progress");

    budget = config_.max_batch_tokens;
    for (Sequence* s : scheduled) {
      const int32_t n = std::min(s->num_uncached(), budget);
      budget -= n;
      const bool completes = s->num_cached + n == static_cast<int32_t>(s->tokens.size());
      chunks.push_back({std::span<const int32_t>(s->tokens).subspan(s->num_cached, n),
                        s->num_cached, s->blocks, completes ? LogitRows::kLast : LogitRows::kNone});
    }
    const ForwardBatch batch = BuildForwardBatch(chunks, bs);
    TF_RETURN_IF_ERROR(model_->Forward(batch, kv_cache_->tensors(), &logits));
    ++stats_.steps;

    const int64_t vocab = model_config().vocab_size;
    size_t row = 0;
    for (size_t i = 0; i < scheduled.size(); ++i) {
      Sequence* s = scheduled[i];
      const int32_t n = static_cast<int32_t>(chunks[i].tokens.size());
      if (s->num_cached < s->prompt_len) stats_.prompt_tokens += std::min(n, s->prompt_len - s->num_cached);
      s->num_cached += n;
      if (chunks[i].logits == LogitRows::kNone) continue;
      const std::span<const float> row_logits(logits.data() + row++ * vocab, vocab);
      const uint64_t step = s->result.tokens.size();
      SampledToken sampled =
          sampler_.Sample(row_logits, s->request->sampling, s->prompt(), s->output(), s->seed, step);
      const int32_t token = sampled.token;
      s->result.tokens.push_back(std::move(sampled));
      s->tokens.push_back(token);
      ++stats_.generated_tokens;
      const StopConditions& stop = s->request->stop;
      const bool is_eos = !stop.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end();
      const bool is_stop = std::find(stop.stop_token_ids.begin(), stop.stop_token_ids.end(),
                                     token) != stop.stop_token_ids.end();
      if (is_eos || is_stop) {
        s->finished = true;
        s->result.finish_reason = FinishReason::kStop;
      } else if (static_cast<int32_t>(s->result.tokens.size()) >= stop.max_tokens) {
        s->finished = true;
        s->result.finish_reason = FinishReason::kLength;
      }
      if (s->finished) {
        ReleaseBlocks(*block_pool_, &s->blocks);
        running.erase(std::find(running.begin(), running.end(), s));
      }
    }
  }
  std::vector<GenerationResult> results;
  results.reserve(seqs.size());
  for (Sequence& s : seqs) results.push_back(std::move(s.result));
  return results;
}

}  // namespace tokenfab
