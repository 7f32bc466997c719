#include "bench/engine_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "base/logging.h"
#include "base/progress.h"
#include "base/random.h"
#include "bench/roofline.h"
#include "engine/batch_builder.h"
#include "engine/sampler.h"
#include "engine/warm_up.h"

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

// Seconds to prefill `tokens` after `prefix` (already in the KV cache when the clock starts, as
// after a prefix-cache hit), in chunks of the engine's token budget.
Result<double> TimePrefill(Engine& engine, const std::vector<int32_t>& prefix,
                           const std::vector<int32_t>& tokens) {
  BenchSequences seqs(engine, 1);
  const int32_t p = static_cast<int32_t>(prefix.size());
  const int32_t n = static_cast<int32_t>(tokens.size());
  TF_RETURN_IF_ERROR(seqs.Reserve(0, p + n));
  std::vector<float> logits;
  const int32_t chunk = engine.config().max_batch_tokens;
  auto prefill = [&](const std::vector<int32_t>& part, int32_t start, LogitRows last) -> Status {
    const int32_t len = static_cast<int32_t>(part.size());
    for (int32_t begin = 0; begin < len; begin += chunk) {
      const int32_t size = std::min(chunk, len - begin);
      SequenceChunk c{std::span<const int32_t>(part).subspan(begin, size), start + begin,
                      seqs.blocks(0), begin + size == len ? last : LogitRows::kNone};
      TF_RETURN_IF_ERROR(engine.model().Forward(
          BuildForwardBatch({&c, 1}, engine.config().block_size), engine.kv_cache().tensors(),
          &logits));
    }
    return Status::Ok();
  };
  TF_RETURN_IF_ERROR(prefill(prefix, 0, LogitRows::kNone));  // returns once the device is done
  const double start = Now();
  TF_RETURN_IF_ERROR(prefill(tokens, p, LogitRows::kLast));
  return Now() - start;
}

// Tokens of KV each sequence of TimeDecode holds: the context, then two warm-up steps (graph
// capture) and the measured steps.
constexpr int32_t kDecodeWarmupSteps = 2;
int32_t DecodeSequenceTokens(int32_t context, int32_t steps) {
  return context + kDecodeWarmupSteps + steps;
}

// Seconds per decode step of `batch` sequences at `context` tokens of context. The contexts
// are prefilled several sequences per forward, up to the engine's token budget. With `chunk` >
// 0 every step also prefills `chunk` tokens of another sequence (positions 0 .. chunk - 1, the
// same every step), after the decodes as the scheduler lays out a step that admits a prompt
// while others decode; the chunk's last row is sampled too.
Result<double> TimeDecode(Engine& engine, int32_t batch, int32_t context, int32_t chunk,
                          int32_t steps, uint64_t seed, const SamplingParams& rule) {
  BenchSequences seqs(engine, batch + 1);
  const int32_t bs = engine.config().block_size;
  const int32_t budget = engine.config().max_batch_tokens;
  const int64_t vocab = engine.model_config().vocab_size;
  std::vector<float> logits;
  std::vector<std::vector<int32_t>> prompts(batch);
  for (int32_t s = 0; s < batch; ++s) {
    prompts[s] = RandomTokens(context, vocab, seed, 100 + s);
    TF_RETURN_IF_ERROR(seqs.Reserve(s, DecodeSequenceTokens(context, steps)));
  }
  const std::vector<int32_t> chunk_tokens = RandomTokens(chunk, vocab, seed, 99);
  if (chunk > 0) TF_RETURN_IF_ERROR(seqs.Reserve(batch, chunk));
  std::vector<int32_t> done(batch, 0);
  for (int32_t s = 0; s < batch;) {  // pack prefill chunks of several sequences per forward
    std::vector<SequenceChunk> chunks;
    int32_t room = budget;
    for (int32_t i = s; i < batch && room > 0; ++i) {
      const int32_t len = std::min(room, context - done[i]);
      chunks.push_back({std::span<const int32_t>(prompts[i]).subspan(done[i], len), done[i],
                        seqs.blocks(i), LogitRows::kNone});
      done[i] += len;
      room -= len;
    }
    TF_RETURN_IF_ERROR(engine.model().Forward(BuildForwardBatch(chunks, bs),
                                              engine.kv_cache().tensors(), &logits));
    while (s < batch && done[s] == context) ++s;
  }
  // Sampled on the device, as a serving step would: only ids come back.
  const int32_t rows = batch + (chunk > 0 ? 1 : 0);
  std::vector<int32_t> next(rows, 1);
  std::vector<float> next_logprobs;
  std::vector<DeviceSamplingParams> sampling(rows);
  for (int32_t s = 0; s < rows; ++s) {
    sampling[s] = SamplingRule(rule, HashCounter(seed, 200, s), /*step=*/0);
  }
  ForwardOutputs out;
  out.sampling = sampling;
  out.tokens = &next;
  out.token_logprobs = &next_logprobs;
  std::vector<double> times;
  for (int32_t step = 0; step < kDecodeWarmupSteps + steps; ++step) {
    std::vector<SequenceChunk> chunks;
    for (int32_t s = 0; s < batch; ++s) {
      chunks.push_back({std::span<const int32_t>(&next[s], 1), context + step, seqs.blocks(s),
                        LogitRows::kLast});
    }
    if (chunk > 0) chunks.push_back({chunk_tokens, 0, seqs.blocks(batch), LogitRows::kLast});
    const ForwardBatch fb = BuildForwardBatch(chunks, bs);
    for (DeviceSamplingParams& d : sampling) d.step = static_cast<uint64_t>(step);
    const double start = Now();
    TF_RETURN_IF_ERROR(engine.model().Forward(fb, engine.kv_cache().tensors(), out));
    if (step >= kDecodeWarmupSteps) times.push_back(Now() - start);
  }
  return Median(times);
}

// Seconds the host Sampler takes for one row of `vocab` logits under `rule`: the median over a
// few rows of Zipf-like logits (p ~ rank^-1.5 over shuffled ids: top-p 0.95 keeps a few hundred
// tokens, as a trained model's distribution might).
double TimeHostSampler(int64_t vocab, const SamplingParams& p, uint64_t seed) {
  std::vector<float> logits(static_cast<size_t>(vocab));
  Sampler sampler;
  std::vector<double> times;
  for (int row = 0; row < 9; ++row) {
    const uint64_t shift = HashCounter(seed, 300, row);
    for (int64_t i = 0; i < vocab; ++i) {
      // A rank per id: i * 1000003 + shift is a bijection mod vocab unless vocab shares 1000003's
      // prime factor, which only its multiples do.
      const uint64_t rank =
          (static_cast<uint64_t>(i) * 1000003u + shift) % static_cast<uint64_t>(vocab);
      logits[i] = -1.5f * std::log1p(static_cast<float>(rank));
    }
    const double start = Now();
    sampler.Sample(logits, p, {}, {}, seed, static_cast<uint64_t>(row));
    times.push_back(Now() - start);
  }
  return Median(times);
}

// Why a case whose sequences hold these token counts cannot run, or "" if its KV fits the
// cache (checked before the case runs, so a grid of batch sizes and contexts can reach past the
// memory at its corners without losing the cases that fit).
std::string KvShortfall(Engine& engine, std::initializer_list<std::pair<int64_t, int64_t>> seqs) {
  const int64_t block_size = engine.config().block_size;
  int64_t needed = 0;
  for (const auto& [count, tokens] : seqs)
    needed += count * ((tokens + block_size - 1) / block_size);
  const int64_t have = engine.block_pool().num_free();
  if (needed <= have) return "";
  return "needs " + std::to_string(needed) + " KV blocks of " + std::to_string(block_size) +
         " tokens, the cache has " + std::to_string(have) + " (raise --kv-cache-gb)";
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
  out["mixed"] = Json::array();
  out["skipped"] = Json::array();
  DeviceCeilings ceilings;
  DeviceProbe* probe = engine.model().backend().probe();
  if (o.measure_ceilings && probe != nullptr) {
    TF_ASSIGN_OR_RETURN(ceilings, probe->MeasureCeilings());
    out["ceilings"] = {{"device_name", ceilings.device_name},
                       {"read_gb_per_s", ceilings.read_gb_per_s},
                       {"copy_gb_per_s", ceilings.copy_gb_per_s},
                       {"matmul_tflops", ceilings.matmul_tflops},
                       {"matmul_dtype", ceilings.matmul_dtype}};
  }
  if (o.warm_up) {
    TF_ASSIGN_OR_RETURN(const WarmUpReport warm, WarmUp(engine));
    out["warm_up"] = {
        {"passes", warm.passes}, {"skipped", warm.skipped}, {"seconds", warm.seconds}};
    if (warm.passes > 0) {
      LOG(INFO) << "warm-up: " << warm.passes << " forward passes in " << warm.seconds << " s";
    }
  }
  const int weight_size = static_cast<int>(
      DTypeSize(engine.model().weights().embed.dtype));
  const int kv_size = static_cast<int>(DTypeSize(engine.model().backend().activation_dtype()));

  const int64_t cases = static_cast<int64_t>(o.prompt_lens.size() * o.prefix_lens.size() +
                                             o.batch_sizes.size() * o.context_lens.size() *
                                                 (1 + o.mixed_prefill_lens.size())) +
                        (o.score_len > 0 ? 1 : 0);
  ProgressBar progress("bench-engine", cases);
  int64_t done = 0;
  for (int32_t prefix : o.prefix_lens) {
    for (int32_t n : o.prompt_lens) {
      const std::string what = "prefill " + std::to_string(n) +
                               (prefix > 0 ? " after " + std::to_string(prefix) : "");
      if (const std::string why = KvShortfall(engine, {{1, prefix + n}}); !why.empty()) {
        out["skipped"].push_back({{"phase", "prefill"},
                                  {"prompt_tokens", n},
                                  {"prefix_tokens", prefix},
                                  {"reason", why}});
        progress.Update(++done, what + " skipped");
        continue;
      }
      const std::vector<int32_t> cached = RandomTokens(prefix, mc.vocab_size, o.seed, 1u << 20);
      const std::vector<int32_t> tokens = RandomTokens(n, mc.vocab_size, o.seed, n);
      TF_RETURN_IF_ERROR(TimePrefill(engine, cached, tokens).status());  // warm-up
      std::vector<double> times;
      for (int32_t r = 0; r < o.repeats; ++r) {
        TF_ASSIGN_OR_RETURN(const double t, TimePrefill(engine, cached, tokens));
        times.push_back(t);
      }
      const double t = Median(times);
      const double flops = PrefillFlops(mc, n, prefix);
      const double bytes = PrefillBytes(mc, n, prefix, weight_size, kv_size);
      Json row = {{"prompt_tokens", n}, {"prefix_tokens", prefix}, {"seconds", t},
                  {"tokens_per_s", n / t},  {"flops", flops},           {"bytes", bytes}};
      if (ceilings.matmul_tflops > 0 && ceilings.read_gb_per_s > 0) {
        // The floor is the slower of doing the flops and reading the weights (and the
        // prefix's KV): short prompts are bound by the reads.
        const double compute = flops / (ceilings.matmul_tflops * 1e12);
        const double memory = bytes / (ceilings.read_gb_per_s * 1e9);
        row["floor_seconds"] = std::max(compute, memory);
        row["bound"] = compute >= memory ? "compute" : "memory";
        row["roofline_fraction"] = std::max(compute, memory) / t;
      }
      out["prefill"].push_back(row);
      progress.Update(++done, what);
    }
  }
  for (int32_t context : o.context_lens) {
    for (int32_t batch : o.batch_sizes) {
      if (const std::string why =
              KvShortfall(engine, {{batch, DecodeSequenceTokens(context, o.decode_steps)}});
          !why.empty()) {
        out["skipped"].push_back(
            {{"phase", "decode"}, {"batch", batch}, {"context", context}, {"reason", why}});
        progress.Update(++done, "decode batch " + std::to_string(batch) + " skipped");
        continue;
      }
      TF_ASSIGN_OR_RETURN(const double t, TimeDecode(engine, batch, context, /*chunk=*/0,
                                                     o.decode_steps, o.seed, o.decode_sampling));
      const double bytes = DecodeWeightBytes(mc, batch, weight_size) +
                           DecodeKvBytes(mc, batch, context, kv_size);
      Json row = {{"batch", batch},          {"context", context},
                  {"step_seconds", t},       {"tokens_per_s", batch / t},
                  {"bytes_per_step", bytes}, {"achieved_gb_per_s", bytes / t / 1e9}};
      if (ceilings.read_gb_per_s > 0) {
        row["roofline_fraction"] = bytes / (ceilings.read_gb_per_s * 1e9) / t;
        row["roofline_tokens_per_s"] = batch * ceilings.read_gb_per_s * 1e9 / bytes;
      }
      out["decode"].push_back(row);
      progress.Update(++done, "decode batch " + std::to_string(batch));
    }
  }
  for (int32_t chunk : o.mixed_prefill_lens) {
    for (int32_t context : o.context_lens) {
      for (int32_t batch : o.batch_sizes) {
        const std::string what =
            "mixed: batch " + std::to_string(batch) + " + prefill " + std::to_string(chunk);
        std::string why = KvShortfall(
            engine, {{batch, DecodeSequenceTokens(context, o.decode_steps)}, {1, chunk}});
        if (batch + chunk > engine.config().max_batch_tokens) {
          why = "the step's " + std::to_string(batch + chunk) + " tokens exceed the " +
                std::to_string(engine.config().max_batch_tokens) + " of --max-batch-tokens";
        }
        if (!why.empty()) {
          out["skipped"].push_back({{"phase", "mixed"},
                                    {"prompt_tokens", chunk},
                                    {"batch", batch},
                                    {"context", context},
                                    {"reason", why}});
          progress.Update(++done, what + " skipped");
          continue;
        }
        // The mixed step, then its two halves alone, side by side.
        TF_ASSIGN_OR_RETURN(const double t, TimeDecode(engine, batch, context, chunk,
                                                       o.decode_steps, o.seed, o.decode_sampling));
        TF_ASSIGN_OR_RETURN(const double decode,
                            TimeDecode(engine, batch, context, /*chunk=*/0, o.decode_steps, o.seed,
                                       o.decode_sampling));
        const std::vector<int32_t> tokens = RandomTokens(chunk, mc.vocab_size, o.seed, 99);
        TF_RETURN_IF_ERROR(TimePrefill(engine, {}, tokens).status());  // warm-up
        std::vector<double> prefills;
        for (int32_t r = 0; r < o.repeats; ++r) {
          TF_ASSIGN_OR_RETURN(const double p, TimePrefill(engine, {}, tokens));
          prefills.push_back(p);
        }
        const double prefill = Median(prefills);
        const double flops = PrefillFlops(mc, chunk, 0) + batch * PrefillFlops(mc, 1, context);
        const double bytes = DecodeWeightBytes(mc, batch + chunk, weight_size) +
                             DecodeKvBytes(mc, batch, context, kv_size);
        Json row = {{"prompt_tokens", chunk},
                    {"batch", batch},
                    {"context", context},
                    {"step_seconds", t},
                    {"tokens_per_s", (batch + chunk) / t},
                    {"decode_step_seconds", decode},
                    {"prefill_seconds", prefill},
                    {"gain_over_separate", (decode + prefill) / t},
                    {"flops", flops},
                    {"bytes", bytes}};
        if (ceilings.matmul_tflops > 0 && ceilings.read_gb_per_s > 0) {
          const double compute = flops / (ceilings.matmul_tflops * 1e12);
          const double memory = bytes / (ceilings.read_gb_per_s * 1e9);
          row["floor_seconds"] = std::max(compute, memory);
          row["bound"] = compute >= memory ? "compute" : "memory";
          row["roofline_fraction"] = std::max(compute, memory) / t;
        }
        out["mixed"].push_back(row);
        progress.Update(++done, what);
      }
    }
  }
  const SamplingParams& rule = o.decode_sampling;
  out["decode_sampling"] = {{"temperature", rule.temperature}, {"top_p", rule.top_p},
                            {"top_k", rule.top_k}, {"min_p", rule.min_p}};
  if (!rule.greedy()) {
    out["host_sampler_seconds_per_row"] = TimeHostSampler(mc.vocab_size, rule, o.seed);
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
  char line[256];
  std::snprintf(line, sizeof(line), "%s on %s: %.2fB parameters, %.2f GB of weights\n",
                r.value("architecture", "").c_str(), r.value("device", "").c_str(),
                r.value("parameters", 0.0) / 1e9, r.value("weight_bytes", 0.0) / 1e9);
  s += line;
  if (r.contains("ceilings")) {
    const Json& c = r["ceilings"];
    std::snprintf(line, sizeof(line),
                  "ceilings of %s: read %.0f GB/s, copy %.0f GB/s, %s GEMM %.1f TFLOP/s\n",
                  c["device_name"].get<std::string>().c_str(), c["read_gb_per_s"].get<double>(),
                  c["copy_gb_per_s"].get<double>(), c["matmul_dtype"].get<std::string>().c_str(),
                  c["matmul_tflops"].get<double>());
    s += line;
  }
  auto fraction = [](const Json& row) {
    return row.contains("roofline_fraction") ? row["roofline_fraction"].get<double>() * 100 : 0.0;
  };
  s += "phase     tokens  batch  context    tokens/s   seconds  roofline\n";
  for (const Json& p : r["prefill"]) {
    const int prefix = p.value("prefix_tokens", 0);
    std::snprintf(line, sizeof(line), "prefill   %6d  %5d  %7s  %10.1f  %8.4f  %6.1f%%\n",
                  p["prompt_tokens"].get<int>(), 1,
                  prefix > 0 ? std::to_string(prefix).c_str() : "-",
                  p["tokens_per_s"].get<double>(), p["seconds"].get<double>(), fraction(p));
    s += line;
  }
  for (const Json& d : r["decode"]) {
    std::snprintf(line, sizeof(line), "decode    %6d  %5d  %7d  %10.1f  %8.4f  %6.1f%%\n", 1,
                  d["batch"].get<int>(), d["context"].get<int>(), d["tokens_per_s"].get<double>(),
                  d["step_seconds"].get<double>(), fraction(d));
    s += line;
  }
  for (const Json& m : r.value("mixed", Json::array())) {
    std::snprintf(line, sizeof(line),
                  "mixed     %6d  %5d  %7d  %10.1f  %8.4f  %6.1f%%  alone: decode %.4f + "
                  "prefill %.4f (%.2fx)\n",
                  m["prompt_tokens"].get<int>(), m["batch"].get<int>(), m["context"].get<int>(),
                  m["tokens_per_s"].get<double>(), m["step_seconds"].get<double>(), fraction(m),
                  m["decode_step_seconds"].get<double>(), m["prefill_seconds"].get<double>(),
                  m["gain_over_separate"].get<double>());
    s += line;
  }
  for (const Json& k : r.value("skipped", Json::array())) {
    const std::string phase = k["phase"].get<std::string>();
    const bool prefill = phase == "prefill";
    std::snprintf(line, sizeof(line), "%-8s  %6d  %5d  %7s  skipped: %s\n", phase.c_str(),
                  phase == "decode" ? 1 : k["prompt_tokens"].get<int>(),
                  prefill ? 1 : k["batch"].get<int>(),
                  prefill ? "-" : std::to_string(k["context"].get<int>()).c_str(),
                  k["reason"].get<std::string>().c_str());
    s += line;
  }
  if (r.contains("host_sampler_seconds_per_row")) {
    const Json& d = r["decode_sampling"];
    std::snprintf(line, sizeof(line),
                  "decode sampled on the device at temperature %.2f, top-p %.2f, top-k %d; the "
                  "host Sampler takes %.3f ms a row\n",
                  d["temperature"].get<double>(), d["top_p"].get<double>(), d["top_k"].get<int>(),
                  1e3 * r["host_sampler_seconds_per_row"].get<double>());
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
