// RunEngineBench (tokenfab bench-engine) on a small checkpoint with the CPU backend: the JSON
// has a row per case with consistent derived numbers, and cases whose KV does not fit the cache
// are reported as skipped while the others still run.
#include "bench/engine_bench.h"

#include <gtest/gtest.h>

#include <string>

#include "backend/backend_registry.h"
#include "bench/roofline.h"
#include "engine/engine.h"
#include "test_util.h"

namespace tokenfab {
namespace {

std::unique_ptr<Engine> SmallEngine(int32_t num_kv_blocks, int32_t max_batch_tokens = 2048) {
  RegisterBuiltinBackends();
  EngineConfig c;
  c.model_dir = testing::TestDataPath("models/llama_gqa4_llama3rope_classic");
  c.num_threads = 2;
  c.num_kv_blocks = num_kv_blocks;  // of 16 tokens
  c.max_batch_tokens = max_batch_tokens;
  auto engine = Engine::Create(c);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

EngineBenchOptions SmallOptions() {
  EngineBenchOptions o;
  o.prompt_lens = {16, 40};
  o.batch_sizes = {1, 3};
  o.context_lens = {20};
  o.decode_steps = 2;
  o.repeats = 1;
  o.score_len = 0;
  o.measure_ceilings = false;
  return o;
}

TEST(EngineBenchTest, ReportsEveryCaseWithConsistentNumbers) {
  auto engine = SmallEngine(64);
  ASSERT_NE(engine, nullptr);
  ASSERT_OK_AND_ASSIGN(const Json r, RunEngineBench(*engine, SmallOptions()));
  EXPECT_EQ(r["device"], "cpu");
  EXPECT_EQ(r["architecture"], "LlamaForCausalLM");
  EXPECT_EQ(r["warm_up"]["passes"], 0) << "the CPU backend has no first-use costs to warm";
  ASSERT_EQ(r["prefill"].size(), 2u);
  EXPECT_EQ(r["prefill"][0]["prompt_tokens"], 16);
  EXPECT_EQ(r["prefill"][1]["prompt_tokens"], 40);
  for (const Json& p : r["prefill"]) {
    EXPECT_GT(p["seconds"].get<double>(), 0.0);
    EXPECT_NEAR(p["tokens_per_s"].get<double>(),
                p["prompt_tokens"].get<double>() / p["seconds"].get<double>(), 1e-6);
    EXPECT_FALSE(p.contains("roofline_fraction"));  // no ceilings were measured
  }
  ASSERT_EQ(r["decode"].size(), 2u);
  const ModelConfig& mc = engine->model_config();
  const int weight_size = static_cast<int>(DTypeSize(engine->model().weights().embed.dtype));
  const int kv_size = static_cast<int>(DTypeSize(engine->model().backend().activation_dtype()));
  for (const Json& d : r["decode"]) {
    const int batch = d["batch"].get<int>(), context = d["context"].get<int>();
    EXPECT_EQ(context, 20);
    const double t = d["step_seconds"].get<double>();
    EXPECT_GT(t, 0.0);
    EXPECT_NEAR(d["tokens_per_s"].get<double>(), batch / t, 1e-6);
    // The roofline's bytes: the weights as the backend holds them, the KV in its activations.
    EXPECT_DOUBLE_EQ(d["bytes_per_step"].get<double>(),
                     DecodeWeightBytes(mc, batch, weight_size) +
                         DecodeKvBytes(mc, batch, context, kv_size));
    EXPECT_NEAR(d["achieved_gb_per_s"].get<double>(),
                d["bytes_per_step"].get<double>() / t / 1e9, 1e-9);
  }
  EXPECT_TRUE(r["skipped"].empty());
  EXPECT_NE(FormatEngineBench(r).find("decode         1      3       20"), std::string::npos)
      << FormatEngineBench(r);
}

TEST(EngineBenchTest, SampledDecodeReportsTheHostSamplersCost) {
  auto engine = SmallEngine(64);
  ASSERT_NE(engine, nullptr);
  EngineBenchOptions o = SmallOptions();
  o.prompt_lens = {};
  ASSERT_OK_AND_ASSIGN(const Json greedy, RunEngineBench(*engine, o));
  EXPECT_EQ(greedy["decode_sampling"]["temperature"], 0.0);
  EXPECT_FALSE(greedy.contains("host_sampler_seconds_per_row")) << "greedy needs no comparison";
  o.decode_sampling.temperature = 0.8f;
  o.decode_sampling.top_p = 0.9f;
  ASSERT_OK_AND_ASSIGN(const Json sampled, RunEngineBench(*engine, o));
  ASSERT_EQ(sampled["decode"].size(), 2u);
  EXPECT_NEAR(sampled["decode_sampling"]["top_p"].get<double>(), 0.9, 1e-6);
  EXPECT_GT(sampled["host_sampler_seconds_per_row"].get<double>(), 0.0);
  EXPECT_NE(FormatEngineBench(sampled).find("the host Sampler takes"), std::string::npos);
}

TEST(EngineBenchTest, PrefillAfterACachedPrefixCountsOnlyTheNewTokens) {
  auto engine = SmallEngine(64);
  ASSERT_NE(engine, nullptr);
  EngineBenchOptions o = SmallOptions();
  o.prefix_lens = {0, 24};
  o.batch_sizes = {};
  ASSERT_OK_AND_ASSIGN(const Json r, RunEngineBench(*engine, o));
  ASSERT_EQ(r["prefill"].size(), 4u);
  const ModelConfig& mc = engine->model_config();
  const int weight_size = static_cast<int>(DTypeSize(engine->model().weights().embed.dtype));
  const int kv_size = static_cast<int>(DTypeSize(engine->model().backend().activation_dtype()));
  for (int i = 0; i < 4; ++i) {
    const Json& p = r["prefill"][i];
    const int prefix = i < 2 ? 0 : 24, n = i % 2 == 0 ? 16 : 40;
    EXPECT_EQ(p["prefix_tokens"], prefix);
    EXPECT_EQ(p["prompt_tokens"], n);
    EXPECT_NEAR(p["tokens_per_s"].get<double>(), n / p["seconds"].get<double>(), 1e-6);
    EXPECT_DOUBLE_EQ(p["flops"].get<double>(), PrefillFlops(mc, n, prefix));
    EXPECT_DOUBLE_EQ(p["bytes"].get<double>(),
                     PrefillBytes(mc, n, prefix, weight_size, kv_size));
  }
  EXPECT_NE(FormatEngineBench(r).find("prefill       40      1       24"), std::string::npos)
      << FormatEngineBench(r);
  EXPECT_EQ(engine->block_pool().num_free(), 64);
}

TEST(EngineBenchTest, MixedStepsAreTimedBesideTheirHalvesAlone) {
  auto engine = SmallEngine(64);
  ASSERT_NE(engine, nullptr);
  EngineBenchOptions o = SmallOptions();
  o.prompt_lens = {};
  o.mixed_prefill_lens = {24};
  ASSERT_OK_AND_ASSIGN(const Json r, RunEngineBench(*engine, o));
  ASSERT_EQ(r["decode"].size(), 2u);
  ASSERT_EQ(r["mixed"].size(), 2u);
  const ModelConfig& mc = engine->model_config();
  const int weight_size = static_cast<int>(DTypeSize(engine->model().weights().embed.dtype));
  const int kv_size = static_cast<int>(DTypeSize(engine->model().backend().activation_dtype()));
  for (int i = 0; i < 2; ++i) {
    const Json& m = r["mixed"][i];
    const int batch = i == 0 ? 1 : 3;
    EXPECT_EQ(m["batch"], batch);
    EXPECT_EQ(m["context"], 20);
    EXPECT_EQ(m["prompt_tokens"], 24);
    const double t = m["step_seconds"].get<double>();
    const double decode = m["decode_step_seconds"].get<double>();
    const double prefill = m["prefill_seconds"].get<double>();
    EXPECT_GT(t, 0.0);
    EXPECT_GT(decode, 0.0);
    EXPECT_GT(prefill, 0.0);
    EXPECT_NEAR(m["tokens_per_s"].get<double>(), (batch + 24) / t, 1e-6);
    EXPECT_NEAR(m["gain_over_separate"].get<double>(), (decode + prefill) / t, 1e-9);
    // One step's work: the prompt's flops plus one token's after `context` per decode; the
    // weights once for all of its tokens plus every decode's KV.
    EXPECT_DOUBLE_EQ(m["flops"].get<double>(),
                     PrefillFlops(mc, 24, 0) + batch * PrefillFlops(mc, 1, 20));
    EXPECT_DOUBLE_EQ(m["bytes"].get<double>(), DecodeWeightBytes(mc, batch + 24, weight_size) +
                                                   DecodeKvBytes(mc, batch, 20, kv_size));
  }
  EXPECT_NE(FormatEngineBench(r).find("mixed         24      3       20"), std::string::npos)
      << FormatEngineBench(r);
  EXPECT_EQ(engine->block_pool().num_free(), 64);
}

TEST(EngineBenchTest, MixedStepsOverTheTokenBudgetAreSkipped) {
  constexpr int32_t budget = 40;
  auto engine = SmallEngine(64, budget);
  ASSERT_NE(engine, nullptr);
  EngineBenchOptions o = SmallOptions();
  o.prompt_lens = {};
  o.batch_sizes = {3};
  o.mixed_prefill_lens = {budget - 3, budget - 2};
  ASSERT_OK_AND_ASSIGN(const Json r, RunEngineBench(*engine, o));
  ASSERT_EQ(r["mixed"].size(), 1u);
  EXPECT_EQ(r["mixed"][0]["prompt_tokens"], budget - 3);
  ASSERT_EQ(r["skipped"].size(), 1u);
  EXPECT_EQ(r["skipped"][0]["phase"], "mixed");
  EXPECT_EQ(r["skipped"][0]["reason"], "the step's " + std::to_string(budget + 1) +
                                           " tokens exceed the " + std::to_string(budget) +
                                           " of --max-batch-tokens");
}

TEST(EngineBenchTest, SkipsCasesWhoseKvDoesNotFitAndRunsTheRest) {
  // 3 blocks of 16 tokens: a 40-token prompt needs 3 (fits), 3 sequences of 20 + 4 tokens
  // need 2 blocks each (6: does not fit), 1 sequence needs 2 (fits).
  auto engine = SmallEngine(3);
  ASSERT_NE(engine, nullptr);
  EngineBenchOptions o = SmallOptions();
  o.prompt_lens = {16, 40, 64};  // 64 tokens need 4 blocks
  ASSERT_OK_AND_ASSIGN(const Json r, RunEngineBench(*engine, o));
  ASSERT_EQ(r["prefill"].size(), 2u);
  ASSERT_EQ(r["decode"].size(), 1u);
  EXPECT_EQ(r["decode"][0]["batch"], 1);
  ASSERT_EQ(r["skipped"].size(), 2u);
  EXPECT_EQ(r["skipped"][0]["phase"], "prefill");
  EXPECT_EQ(r["skipped"][0]["prompt_tokens"], 64);
  EXPECT_EQ(r["skipped"][1]["phase"], "decode");
  EXPECT_EQ(r["skipped"][1]["batch"], 3);
  EXPECT_EQ(r["skipped"][1]["reason"],
            "needs 6 KV blocks of 16 tokens, the cache has 3 (raise --kv-cache-gb)");
  const std::string table = FormatEngineBench(r);
  EXPECT_NE(table.find("decode         1      3       20  skipped: needs 6 KV blocks"),
            std::string::npos)
      << table;
  EXPECT_EQ(engine->block_pool().num_free(), 3);  // every measured case gave its blocks back
}

}  // namespace
}  // namespace tokenfab
