// The warm-up plan (every tuned row count met as a mixed step's tokens and as its logit rows,
// every graph batch size as a decode) and its run on an engine: passes that fit run, the rest
// are skipped, every borrowed KV block comes back and later requests give the same tokens.
#include "engine/warm_up.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "backend/backend_registry.h"
#include "test_util.h"

namespace tokenfab {
namespace {

TEST(PlanWarmUpTest, CoversEveryTokenCountRowCountAndGraphSize) {
  // CUDA's row buckets up to 32 tokens and 8 sequences, graph sizes past the sequence limit.
  const std::vector<int64_t> tokens = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32};
  const std::vector<int64_t> rows = {1, 2, 3, 4, 6, 8};
  const std::vector<int32_t> graphs = {1, 2, 4, 8, 16};
  const std::vector<WarmUpPass> plan = PlanWarmUp(tokens, rows, graphs, 32, 8);
  const std::vector<WarmUpPass> expected = {{2, 1},  {3, 2},  {4, 3},  {6, 4},  {8, 6},
                                            {12, 8}, {16, 8}, {24, 8}, {32, 8},  // mixed
                                            {1, 1},  {2, 2},  {4, 4},  {8, 8}};  // decodes
  EXPECT_EQ(plan, expected);
  std::set<int64_t> mixed_tokens, mixed_rows;
  for (const WarmUpPass& p : plan) {
    EXPECT_LE(p.tokens, 32);
    EXPECT_LE(p.rows, 8);
    if (p.rows < p.tokens) {
      mixed_tokens.insert(p.tokens);
      mixed_rows.insert(p.rows);
    }
  }
  EXPECT_EQ(mixed_tokens, std::set<int64_t>(tokens.begin() + 1, tokens.end()));
  EXPECT_EQ(mixed_rows, std::set<int64_t>(rows.begin(), rows.end()));
}

TEST(PlanWarmUpTest, RowCountsUpToTheTokenBudgetAndNothingWithoutCounts) {
  // More sequences allowed than tokens in a step: rows are bounded by the budget too; 8 rows
  // cannot sit beside a prompt chunk in 8 tokens, so only a decode (a graph size) meets them.
  const std::vector<int64_t> counts = {1, 2, 4, 8};
  EXPECT_EQ(PlanWarmUp(counts, counts, {}, 8, 64),
            (std::vector<WarmUpPass>{{2, 1}, {4, 2}, {8, 4}}));
  EXPECT_EQ(PlanWarmUp({}, {}, {}, 2048, 256), std::vector<WarmUpPass>{});
  const std::vector<int32_t> graphs = {1, 2, 4};
  EXPECT_EQ(PlanWarmUp({}, {}, graphs, 2048, 2), (std::vector<WarmUpPass>{{1, 1}, {2, 2}}));
}

std::unique_ptr<Engine> MakeEngine(int32_t num_kv_blocks = 32) {
  RegisterBuiltinBackends();
  EngineConfig c;
  c.model_dir = testing::TestDataPath("models/llama_gqa4_llama3rope_classic");
  c.num_threads = 2;
  c.block_size = 4;
  c.num_kv_blocks = num_kv_blocks;
  c.block_hash_key = SipKey{};
  auto engine = Engine::Create(c);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

std::vector<int32_t> Generate(Engine& e) {
  GenerationRequest r;
  r.prompt = {3, 14, 15, 92, 65, 35, 89};
  r.sampling.temperature = 0;
  r.stop.max_tokens = 6;
  r.stop.ignore_eos = true;
  auto out = e.Generate({r});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  std::vector<int32_t> tokens;
  if (out.ok()) {
    for (const SampledToken& t : (*out)[0].tokens) tokens.push_back(t.token);
  }
  return tokens;
}

TEST(RunWarmUpTest, PassesRunOrAreSkippedAndLeaveTheEngineAsItWas) {
  auto warmed = MakeEngine(), fresh = MakeEngine();
  ASSERT_NE(warmed, nullptr);
  ASSERT_NE(fresh, nullptr);
  // 32 blocks of 4 tokens: 200 tokens in one sequence do not fit; the others do.
  const std::vector<WarmUpPass> passes = {{9, 3}, {200, 2}, {5, 5}, {1, 1}};
  ASSERT_OK_AND_ASSIGN(const WarmUpReport report, RunWarmUpPasses(*warmed, passes));
  EXPECT_EQ(report.passes, 3);
  EXPECT_EQ(report.skipped, 1);
  EXPECT_EQ(warmed->block_pool().num_used(), 0) << "every borrowed block is given back";
  EXPECT_EQ(warmed->prefix_cache().num_cached(), 0) << "warm-up KV is never cached";
  EXPECT_EQ(Generate(*warmed), Generate(*fresh));
  const std::vector<WarmUpPass> bad = {{2, 3}};
  EXPECT_EQ(RunWarmUpPasses(*warmed, bad).status().code(), StatusCode::kInvalidArgument);
  // The CPU backend has no first-use costs: nothing to run.
  ASSERT_OK_AND_ASSIGN(const WarmUpReport none, WarmUp(*warmed));
  EXPECT_EQ(none.passes + none.skipped, 0);
}

TEST(RunWarmUpTest, ServingSizedPassesOfManySequencesRun) {
  // A CUDA plan's shapes at this model's scale: up to 96 tokens beside up to 24 logit rows,
  // then decodes of up to 24 sequences (one token each, graph-sized).
  auto e = MakeEngine(/*num_kv_blocks=*/128);
  ASSERT_NE(e, nullptr);
  const std::vector<int64_t> counts = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96};
  const std::vector<int32_t> graphs = {1, 2, 4, 8, 16, 24};
  const std::vector<WarmUpPass> plan = PlanWarmUp(counts, counts, graphs, 96, 24);
  ASSERT_OK_AND_ASSIGN(const WarmUpReport report, RunWarmUpPasses(*e, plan));
  EXPECT_EQ(report.passes, static_cast<int32_t>(plan.size()));
  EXPECT_EQ(report.skipped, 0);
  EXPECT_EQ(e->block_pool().num_used(), 0);
}

}  // namespace
}  // namespace tokenfab
