#include <fstream>
#include <iostream>

#include "bench/engine_bench.h"
#include "cli/command.h"

namespace tokenfab {
namespace {

Result<std::vector<int32_t>> IntList(const Flags& flags, const std::string& name,
                                     std::vector<int64_t> fallback, int64_t min = 1) {
  TF_ASSIGN_OR_RETURN(const std::vector<int64_t> values, flags.GetIntList(name, fallback));
  std::vector<int32_t> out;
  for (int64_t v : values) {
    if (v < min || v > (1 << 20)) {
      return InvalidArgumentError("--" + name + ": " + std::to_string(v) + " is out of range");
    }
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

}  // namespace

Command BenchEngineCommand() {
  Command c;
  c.name = "bench-engine";
  c.summary = "prefill / decode / scoring speed of the forward pass, as JSON";
  c.flags = EngineFlagSpecs();
  const std::vector<FlagSpec> own = {
      {"prompt-lens", true, "prefill lengths (default 128,512)"},
      {"prefix-lens", true,
       "tokens already in the KV cache before each prefill, as after a prefix-cache hit "
       "(default 0)"},
      {"batch-sizes", true, "decode batch sizes (default 1,8)"},
      {"context-lens", true, "decode context lengths (default 128)"},
      {"mixed-prefill-lens", true,
       "prompt lengths prefilled in the same step as each decode batch, timed against the "
       "two alone (default none)"},
      {"decode-steps", true, "timed decode steps per case (default 8)"},
      {"repeats", true, "prefill runs per length; the median is reported (default 3)"},
      {"score-len", true, "tokens of the scoring run, 0 to skip (default 512)"},
      {"output", true, "also write the JSON to this file"},
      {"no-ceilings", false, "skip measuring the device's ceilings (no roofline fractions)"},
      {"no-warmup", false,
       "skip the server's warm-up (GEMM row buckets, decode graphs): each "
       "bucket is then timed at the first case that meets it"},
      {"decode-temperature", true, "decode steps sample at this temperature (default 0: greedy)"},
      {"decode-top-p", true, "... with this top-p (default 1)"},
      {"decode-top-k", true, "... and this top-k (default 0: off)"},
  };
  c.flags.insert(c.flags.end(), own.begin(), own.end());
  c.run = [](const Flags& flags) -> Status {
    EngineBenchOptions o;
    TF_ASSIGN_OR_RETURN(o.prompt_lens, IntList(flags, "prompt-lens", {128, 512}));
    TF_ASSIGN_OR_RETURN(o.prefix_lens, IntList(flags, "prefix-lens", {0}, /*min=*/0));
    TF_ASSIGN_OR_RETURN(o.batch_sizes, IntList(flags, "batch-sizes", {1, 8}));
    TF_ASSIGN_OR_RETURN(o.context_lens, IntList(flags, "context-lens", {128}));
    TF_ASSIGN_OR_RETURN(o.mixed_prefill_lens, IntList(flags, "mixed-prefill-lens", {}));
    TF_ASSIGN_OR_RETURN(const int64_t steps, flags.GetInt("decode-steps", 8));
    TF_ASSIGN_OR_RETURN(const int64_t repeats, flags.GetInt("repeats", 3));
    TF_ASSIGN_OR_RETURN(const int64_t score_len, flags.GetInt("score-len", 512));
    if (steps < 1 || steps > 100000 || repeats < 1 || repeats > 1000 || score_len < 0 ||
        score_len > (1 << 20)) {
      return InvalidArgumentError("--decode-steps, --repeats or --score-len out of range");
    }
    o.decode_steps = static_cast<int32_t>(steps);
    o.repeats = static_cast<int32_t>(repeats);
    o.score_len = static_cast<int32_t>(score_len);
    o.measure_ceilings = !flags.Has("no-ceilings");
    o.warm_up = !flags.Has("no-warmup");
    SamplingParams& rule = o.decode_sampling;
    TF_ASSIGN_OR_RETURN(rule.temperature, flags.GetDouble("decode-temperature", 0));
    TF_ASSIGN_OR_RETURN(rule.top_p, flags.GetDouble("decode-top-p", 1));
    TF_ASSIGN_OR_RETURN(const int64_t top_k, flags.GetInt("decode-top-k", 0));
    if (top_k < 0 || top_k > (1 << 24)) return InvalidArgumentError("--decode-top-k out of range");
    rule.top_k = static_cast<int32_t>(top_k);
    TF_RETURN_IF_ERROR(rule.Validate().WithContext("decode sampling"));
    TF_ASSIGN_OR_RETURN(EngineConfig config, EngineConfigFromFlags(flags));
    TF_ASSIGN_OR_RETURN(auto engine, Engine::Create(config));
    TF_ASSIGN_OR_RETURN(const Json result, RunEngineBench(*engine, o));
    std::cerr << FormatEngineBench(result);
    std::cout << result.dump(2) << std::endl;
    if (flags.Has("output")) {
      std::ofstream file(flags.GetString("output"));
      file << result.dump(2) << "\n";
      if (!file) return InvalidArgumentError("cannot write " + flags.GetString("output"));
    }
    return Status::Ok();
  };
  return c;
}

}  // namespace tokenfab
