#include <limits>

#include "cli/command.h"

namespace tokenfab {

std::vector<FlagSpec> EngineFlagSpecs() {
  return {
      {"model", true, "model directory (config.json + safetensors)"},
      {"device", true, "cpu (default) or cuda"},
      {"dummy-weights", false, "seeded random weights from config.json alone"},
      {"dummy-seed", true, "seed of --dummy-weights (default 0)"},
      {"threads", true, "CPU threads (default: all)"},
      {"kv-cache-gb", true, "KV cache size in GB (default: 1 on cpu, most of the free memory on cuda)"},
      {"block-size", true, "tokens per KV block (default 16)"},
      {"max-batch-tokens", true, "tokens per engine step (default 2048)"},
      {"max-prefill-tokens-with-decodes", true,
       "prompt tokens a step takes while it also runs decodes (default 0: the budget's rest)"},
      {"log-level", true, "debug, info (default), warning, error"},
  };
}

Result<EngineConfig> EngineConfigFromFlags(const Flags& flags) {
  EngineConfig c;
  TF_ASSIGN_OR_RETURN(c.model_dir, flags.Required("model"));
  c.device = flags.GetString("device", "cpu");
  c.dummy_weights = flags.Has("dummy-weights");
  TF_ASSIGN_OR_RETURN(const int64_t seed, flags.GetInt("dummy-seed", 0));
  c.dummy_seed = static_cast<uint64_t>(seed);
  TF_ASSIGN_OR_RETURN(const int64_t threads, flags.GetInt("threads", 0));
  if (threads < 0 || threads > 1024) return InvalidArgumentError("--threads must be in [0, 1024]");
  c.num_threads = static_cast<int>(threads);
  if (flags.Has("kv-cache-gb")) {
    TF_ASSIGN_OR_RETURN(const double kv_gb, flags.GetDouble("kv-cache-gb", 1.0));
    if (!(kv_gb > 0.0 && kv_gb < 1e5)) return InvalidArgumentError("--kv-cache-gb must be > 0");
    c.kv_cache_bytes = static_cast<uint64_t>(kv_gb * 1e9);
  }
  TF_ASSIGN_OR_RETURN(const int64_t block_size, flags.GetInt("block-size", 16));
  TF_ASSIGN_OR_RETURN(const int64_t batch_tokens, flags.GetInt("max-batch-tokens", 2048));
  if (block_size < 1 || block_size > 1024) {
    return InvalidArgumentError("--block-size must be in [1, 1024]");
  }
  if (batch_tokens < 1 || batch_tokens > (1 << 20)) {
    return InvalidArgumentError("--max-batch-tokens must be in [1, 1048576]");
  }
  TF_ASSIGN_OR_RETURN(const int64_t beside, flags.GetInt("max-prefill-tokens-with-decodes", 0));
  if (beside < 0 || beside > (1 << 20)) {
    return InvalidArgumentError("--max-prefill-tokens-with-decodes must be in [0, 1048576]");
  }
  c.block_size = static_cast<int32_t>(block_size);
  c.max_batch_tokens = static_cast<int32_t>(batch_tokens);
  c.max_prefill_tokens_with_decodes = static_cast<int32_t>(beside);
  return c;
}

Result<std::vector<int32_t>> TokensFromFlags(const Flags& flags) {
  if (!flags.Has("tokens")) return InvalidArgumentError("missing required flag '--tokens'");
  TF_ASSIGN_OR_RETURN(const std::vector<int64_t> ids, flags.GetIntList("tokens"));
  std::vector<int32_t> tokens;
  for (int64_t id : ids) {
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) {
      return InvalidArgumentError("--tokens: " + std::to_string(id) + " is not a token id");
    }
    tokens.push_back(static_cast<int32_t>(id));
  }
  if (tokens.empty()) return InvalidArgumentError("--tokens: empty token list");
  return tokens;
}

}  // namespace tokenfab
