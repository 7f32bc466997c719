#include "bench/engine_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "base/progress.h"
#include "base/random.h"
#include "engine/batch_builder.h"

namespace tokenfab {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int32_t> RandomTokens(int32_t n, int64_t vocab, uint64_t seed, uint64_t stream) {
  std::vector<int32_t> tokens(n);
  for (int32_t i = 0; i < n; ++i) {
    tokens[i] = static_cast<int32_t>(HashCounter(seed, stream, i) % static_cast<uint64_t>(vocab));
  }
  return tokens;
}

// Sequences that own KV blocks for the duration of a measurement.
class BenchSequences {
 public:
  BenchSequences(Engine& engine, int32_t count) : engine_(engine), blocks_(count) {}
  ~BenchSequences() {
    for (auto& b : blocks_) ReleaseBlocks(engine_.block_pool(), &b);
  }
  std::vector<BlockId>& blocks(int32_t i) { return blocks_[i]; }
  Status Reserve(int32_t i, int32_t tokens) {
    return EnsureBlocks(engine_.block_pool(), engine_.config().block_size, tokens, &blocks_[i])
        .WithContext("benchmark does not fit the KV cache (raise --kv-cache-gb)");
  }

 private:
  Engine& engine_;
  std::vector<std::vector<BlockId>> blocks_;
};

Result<double> TimePrefill(Engine& engine, const std::vector<int32_t>& tokens) {
  BenchSequences seqs(engine, 1);
  const int32_t n = static_cast<int32_t>(tokens.size());
  TF_RETURN_IF_ERROR(seqs.Reserve(0, n));
  std::vector<float> logits;
  const int32_t chunk = engine.config().max_batch_tokens;
  const double start = Now();
  for (int32_t begin = 0; begin < n; begin += chunk) {
    const int32_t len = std::min(chunk, n - begin);
    SequenceChunk c{std::span<const int32_t>(tokens).subspan(begin, len), begin, seqs.blocks(0),
                    begin + len == n ? LogitRows::kLast : LogitRows::kNone};
    TF_RETURN_IF_ERROR(engine.model().Forward(BuildForwardBatch({&c, 1}, engine.config().block_size),
                                              engine.kv_cache().tensors(), &logits));
  }
  return Now() - start;
}

// Seconds per decode step of `batch` sequences at `context` tokens of context.
Result<double> TimeDecode(Engine& engine, int32_t batch, int32_t context, int32_t steps,
                          uint64_t seed) {
  BenchSequences seqs(engine, batch);
  const int32_t bs = engine.config().block_size;
  const int64_t vocab = engine.model_config().vocab_size;
  std::vector<float> logits;
  std::vector<std::vector<int32_t>> prompts(batch);
  for (int32_t s = 0; s < batch; ++s) {
    prompts[s] = RandomTokens(context, vocab, seed, 100 + s);
    TF_RETURN_IF_ERROR(seqs.Reserve(s, context + steps + 1));
    for (int32_t begin = 0; begin < context; begin += engine.config().max_batch_tokens) {
      const int32_t len = std::min(engine.config().max_batch_tokens, context - begin);
      SequenceChunk c{std::span<const int32_t>(prompts[s]).subspan(begin, len), begin,
                      seqs.blocks(s), LogitRows::kNone};
      TF_RETURN_IF_ERROR(engine.model().Forward(BuildForwardBatch({&c, 1}, bs),
                                                engine.kv_cache().tensors(), &logits));
    }
  }
  std::vector<int32_t> next(batch, 1);
  std::vector<double> times;
  for (int32_t step = 0; step <= steps; ++step) {  // step 0 warms up
    std::vector<SequenceChunk> chunks;
    for (int32_t s = 0; s < batch; ++s) {
      chunks.push_back({std::span<const int32_t>(&next[s], 1), context + step, seqs.blocks(s),
                        LogitRows::kLast});
    }
    const ForwardBatch fb = BuildForwardBatch(chunks, bs);
    const double start = Now();
    TF_RETURN_IF_ERROR(engine.model().Forward(fb, engine.kv_cache().tensors(), &logits));
    if (step > 0) times.push_back(Now() - start);
    for (int32_t s = 0; s < batch; ++s) {
      const float* row = logits.data() + s * vocab;
      next[s] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
    }
  }
  return Median(times);
}

}  // namespace

Result<Json> RunEngineBench(Engine& engine, const EngineBenchOptions& o) {
  const ModelConfig& mc = engine.model_config();
  Json out;
  out["device"] = engine.config().device;
  out["model"] = engine.config().model_dir;
  out["architecture"] = std::string(ArchitectureName(mc.arch));
  out["parameters"] = mc.NumParameters();
  out["weight_bytes"] = engine.model().weights().bytes;
  out["dummy_weights"] = engine.config().dummy_weights;
  out["prefill"] = Json::array();
  out["decode"] = Json::array();

  const int64_t cases = static_cast<int64_t>(o.prompt_lens.size() +
                                             o.batch_sizes.size() * o.context_lens.size()) +
                        (o.score_len > 0 ? 1 : 0);
  ProgressBar progress("bench-engine", cases);
  int64_t done = 0;
  for (int32_t n : o.prompt_lens) {
    const std::vector<int32_t> tokens = RandomTokens(n, mc.vocab_size, o.seed, n);
    TF_RETURN_IF_ERROR(TimePrefill(engine, tokens).status());  // warm-up
    std::vector<double> times;
    for (int32_t r = 0; r < o.repeats; ++r) {
      TF_ASSIGN_OR_RETURN(const double t, TimePrefill(engine, tokens));
      times.push_back(t);
    }
    const double t = Median(times);
    out["prefill"].push_back({{"prompt_tokens", n}, {"seconds", t}, {"tokens_per_s", n / t}});
    progress.Update(++done, "prefill " + std::to_string(n));
  }
  for (int32_t context : o.context_lens) {
    for (int32_t batch : o.batch_sizes) {
      TF_ASSIGN_OR_RETURN(const double t,
                          TimeDecode(engine, batch, context, o.decode_steps, o.seed));
      const double weight_gbps = static_cast<double>(engine.model().weights().bytes) / t / 1e9;
      out["decode"].push_back({{"batch", batch},
                               {"context", context},
                               {"step_seconds", t},
                               {"tokens_per_s", batch / t},
                               {"weight_gb_per_s", weight_gbps}});
      progress.Update(++done, "decode batch " + std::to_string(batch));
    }
  }
  if (o.score_len > 0) {
    const std::vector<int32_t> tokens = RandomTokens(o.score_len, mc.vocab_size, o.seed, 7);
    const double start = Now();
    TF_RETURN_IF_ERROR(engine.Score(tokens).status());
    const double t = Now() - start;
    out["score"] = {{"tokens", o.score_len}, {"seconds", t}, {"tokens_per_s", o.score_len / t}};
    progress.Update(++done, "score");
  }
  progress.Done();
  return out;
}

std::string FormatEngineBench(const Json& r) {
  std::string s;
  char line[160];
  std::snprintf(line, sizeof(line), "%s on %s: %.2fB parameters, %.2f GB of weights\n",
                r.value("architecture", "").c_str(), r.value("device", "").c_str(),
                r.value("parameters", 0.0) / 1e9, r.value("weight_bytes", 0.0) / 1e9);
  s += line;
  s += "phase     tokens  batch  context  tokens/s   seconds\n";
  for (const Json& p : r["prefill"]) {
    std::snprintf(line, sizeof(line), "prefill   %6d  %5d  %7s  %8.1f  %8.3f\n",
                  p["prompt_tokens"].get<int>(), 1, "-", p["tokens_per_s"].get<double>(),
                  p["seconds"].get<double>());
    s += line;
  }
  for (const Json& d : r["decode"]) {
    std::snprintf(line, sizeof(line), "decode    %6d  %5d  %7d  %8.1f  %8.3f\n", 1,
                  d["batch"].get<int>(), d["context"].get<int>(), d["tokens_per_s"].get<double>(),
                  d["step_seconds"].get<double>());
    s += line;
  }
  if (r.contains("score")) {
    std::snprintf(line, sizeof(line), "score     %6d  %5d  %7s  %8.1f  %8.3f\n",
                  r["score"]["tokens"].get<int>(), 1, "-", r["score"]["tokens_per_s"].get<double>(),
                  r["score"]["seconds"].get<double>());
    s += line;
  }
  return s;
}

}  // namespace tokenfab
