// Batch invariance of the forward pass: a sequence's next-token distributions do not depend on
// how its tokens are cut into forward passes (one pass, token by token, uneven chunks), on the
// KV block size, or on which other sequences share the batch and at what stage they are.
//
// Drives model/CausalLm directly over kv/KvCache + kv/BlockPool with batches built by
// engine/batch_builder, on dense and MoE golden checkpoints (a sliding-window one included, with
// sequences longer than its window). Every row of log-probs (the whole vocabulary) must agree
// with the single-pass run (see kTolerance).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend_registry.h"
#include "base/random.h"
#include "engine/batch_builder.h"
#include "engine/sampler.h"
#include "kv/block_pool.h"
#include "kv/kv_cache.h"
#include "model/causal_lm.h"
#include "model/checkpoint.h"
#include "test_util.h"

namespace tokenfab {
namespace {

// Next-token log-probs (what Score reports) agree to kTolerance; every other entry of a row to
// kTolerance relative to its magnitude (log-probs of unlikely tokens reach -20, where one f32
// ulp is 2e-6 and a few roundings of a different summation order exceed 1e-5 absolute).
constexpr double kTolerance = 1e-5;

// A model with its own KV cache and block pool.
struct Model {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<CausalLm> lm;
  std::unique_ptr<KvCache> cache;
  std::unique_ptr<BlockPool> pool;
  int32_t block_size = 16;
  int64_t vocab = 0;
};

std::unique_ptr<Model> LoadModel(const std::string& name, int32_t block_size) {
  RegisterBuiltinBackends();
  auto m = std::make_unique<Model>();
  const std::string dir = testing::TestDataPath("models/" + name);
  auto config = LoadModelConfig(dir);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  auto backend = CreateBackend("cpu", BackendOptions{0, 2});
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  auto ckpt = Checkpoint::Open(dir);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  if (!config.ok() || !backend.ok() || !ckpt.ok()) return nullptr;
  m->backend = std::move(backend).value();
  auto weights = LoadWeights(*config, **ckpt, *m->backend);
  EXPECT_TRUE(weights.ok()) << weights.status().ToString();
  if (!weights.ok()) return nullptr;
  auto lm = CausalLm::Create(*config, std::move(weights).value(), m->backend.get());
  EXPECT_TRUE(lm.ok()) << lm.status().ToString();
  if (!lm.ok()) return nullptr;
  m->lm = std::move(lm).value();
  KvCacheLayout layout;
  layout.num_layers = static_cast<int>(config->num_layers);
  layout.num_kv_heads = static_cast<int>(config->num_kv_heads);
  layout.head_dim = static_cast<int>(config->head_dim);
  layout.block_size = block_size;
  layout.num_blocks = 2048 / block_size + 64;
  layout.dtype = m->backend->activation_dtype();
  auto cache = KvCache::Create(*m->backend, layout);
  EXPECT_TRUE(cache.ok()) << cache.status().ToString();
  if (!cache.ok()) return nullptr;
  m->cache = std::move(cache).value();
  m->pool = std::make_unique<BlockPool>(layout.num_blocks);
  m->block_size = block_size;
  m->vocab = config->vocab_size;
  return m;
}

// One sequence being fed through the model: its tokens, KV blocks and the log-softmax row
// computed after each of its positions.
struct Seq {
  std::vector<int32_t> tokens;
  int32_t num_cached = 0;
  std::vector<BlockId> blocks;
  std::vector<std::vector<float>> rows;  // [position][vocab]
};

// One forward pass in which each listed sequence advances by its count of tokens (all rows'
// logits requested).
void Step(Model& m, const std::vector<std::pair<Seq*, int32_t>>& work) {
  std::vector<SequenceChunk> chunks;
  for (auto [s, n] : work) {
    ASSERT_LE(s->num_cached + n, static_cast<int32_t>(s->tokens.size()));
    ASSERT_OK(EnsureBlocks(*m.pool, m.block_size, s->num_cached + n, &s->blocks));
    chunks.push_back({std::span<const int32_t>(s->tokens).subspan(s->num_cached, n), s->num_cached,
                      s->blocks, LogitRows::kAll});
  }
  const ForwardBatch batch = BuildForwardBatch(chunks, m.block_size);
  std::vector<float> logits;
  ASSERT_OK(m.lm->Forward(batch, m.cache->tensors(), &logits));
  ASSERT_EQ(logits.size(), batch.logit_rows.size() * m.vocab);
  size_t row = 0;
  for (auto [s, n] : work) {
    for (int32_t i = 0; i < n; ++i, ++row) {
      std::vector<float> lp;
      LogSoftmax(std::span<const float>(logits.data() + row * m.vocab, m.vocab), &lp);
      s->rows.push_back(std::move(lp));
    }
    s->num_cached += n;
  }
}

void Release(Model& m, Seq& s) { ReleaseBlocks(*m.pool, &s.blocks); }

// Feeds `tokens` alone, in chunks of the given sizes (the last one repeats until done).
std::vector<std::vector<float>> RunAlone(Model& m, const std::vector<int32_t>& tokens,
                                         const std::vector<int32_t>& chunks) {
  Seq s;
  s.tokens = tokens;
  const int32_t n = static_cast<int32_t>(tokens.size());
  for (size_t c = 0; s.num_cached < n; ++c) {
    const int32_t want = chunks[std::min(c, chunks.size() - 1)];
    Step(m, {{&s, std::min(want, n - s.num_cached)}});
    if (::testing::Test::HasFatalFailure()) return {};
  }
  Release(m, s);
  return s.rows;
}

std::vector<int32_t> RandomTokens(int n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>(HashCounter(seed, 1, i) % vocab);
  return t;
}

// Largest |a - b| / max(1, |b|) over all rows.
double MaxRowDiff(const std::vector<std::vector<float>>& a,
                  const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return INFINITY;
    for (size_t j = 0; j < a[i].size(); ++j) {
      const double d =
          std::fabs(double(a[i][j]) - b[i][j]) / std::max(1.0, std::fabs(double(b[i][j])));
      if (!(d <= worst)) worst = std::isfinite(d) ? d : INFINITY;
    }
  }
  return worst;
}

// `got` and `want` are the rows of a sequence of `tokens`.
void ExpectSameRows(const std::vector<int32_t>& tokens, const std::vector<std::vector<float>>& got,
                    const std::vector<std::vector<float>>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_EQ(got.size(), tokens.size()) << what;
  double next = 0.0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    const double d = std::fabs(double(got[i][tokens[i + 1]]) - want[i][tokens[i + 1]]);
    if (!(d <= next)) next = std::isfinite(d) ? d : INFINITY;
  }
  EXPECT_LE(next, kTolerance) << what << ": next-token log-probs differ by " << next;
  const double row = MaxRowDiff(got, want);
  EXPECT_LE(row, kTolerance) << what << ": log-prob rows differ by " << row
                             << " (relative to max(1, |log-prob|))";
}

// (checkpoint, block size)
class InvarianceTest : public ::testing::TestWithParam<std::tuple<std::string, int32_t>> {
 protected:
  void SetUp() override {
    model_ = LoadModel(std::get<0>(GetParam()), std::get<1>(GetParam()));
    ASSERT_NE(model_, nullptr);
  }
  std::unique_ptr<Model> model_;
};

TEST_P(InvarianceTest, OnePassTokenByTokenAndUnevenChunksAgree) {
  Model& m = *model_;
  const std::vector<int32_t> tokens = RandomTokens(97, m.vocab, 1);
  const auto one = RunAlone(m, tokens, {97});
  ASSERT_EQ(one.size(), 97u);
  ExpectSameRows(tokens, RunAlone(m, tokens, {1}), one, "token by token");
  ExpectSameRows(tokens, RunAlone(m, tokens, {5, 17, 1, 74}), one, "chunks 5, 17, 1, 74");
  ExpectSameRows(tokens, RunAlone(m, tokens, {16}), one, "chunks of 16");
  ExpectSameRows(tokens, RunAlone(m, tokens, {33, 1, 1, 2, 60}), one, "chunks 33, 1, 1, 2, 60");
  EXPECT_EQ(m.pool->num_used(), 0) << "blocks leaked";
}

TEST_P(InvarianceTest, BatchedWithSequencesAtOtherStages) {
  Model& m = *model_;
  // Three sequences alone, in one pass each.
  const std::vector<int32_t> ta = RandomTokens(97, m.vocab, 2), tb = RandomTokens(60, m.vocab, 3),
                             tc = RandomTokens(33, m.vocab, 4), td = RandomTokens(17, m.vocab, 5);
  const auto a_alone = RunAlone(m, ta, {97});
  const auto b_alone = RunAlone(m, tb, {60});
  const auto c_alone = RunAlone(m, tc, {33});
  const auto d_alone = RunAlone(m, td, {17});
  // The same sequences sharing forward passes at different stages: chunked prefills next to
  // whole prompts next to single decode tokens, in changing order.
  Seq a, b, c, d;
  a.tokens = ta;
  b.tokens = tb;
  c.tokens = tc;
  d.tokens = td;
  Step(m, {{&a, 5}, {&b, 17}});
  Step(m, {{&b, 1}, {&a, 17}, {&c, 33}});
  Step(m, {{&c, 0}, {&a, 1}, {&b, 1}, {&d, 3}});
  Step(m, {{&d, 14}, {&b, 40}, {&a, 1}});
  Step(m, {{&a, 30}, {&b, 1}});
  while (a.num_cached < 97) Step(m, {{&a, std::min(9, 97 - a.num_cached)}});
  ASSERT_FALSE(HasFatalFailure());
  ExpectSameRows(ta, a.rows, a_alone, "sequence a, batched");
  ExpectSameRows(tb, b.rows, b_alone, "sequence b, batched");
  ExpectSameRows(tc, c.rows, c_alone, "sequence c, batched");
  ExpectSameRows(td, d.rows, d_alone, "sequence d, batched");
  for (Seq* s : {&a, &b, &c, &d}) Release(m, *s);
  EXPECT_EQ(m.pool->num_used(), 0);
}

TEST_P(InvarianceTest, ManyDecodesInOneBatch) {
  // Eight sequences prefilled separately, then decoded together one token per step: every
  // decode row equals that sequence's single-pass row.
  Model& m = *model_;
  std::vector<Seq> seqs(8);
  std::vector<std::vector<std::vector<float>>> alone;
  for (int i = 0; i < 8; ++i) {
    seqs[i].tokens = RandomTokens(20 + 7 * i, m.vocab, 10 + i);
    alone.push_back(RunAlone(m, seqs[i].tokens, {1000}));
  }
  for (int i = 0; i < 8; ++i) Step(m, {{&seqs[i], 12 + 7 * i}});
  for (int t = 0; t < 8; ++t) {
    std::vector<std::pair<Seq*, int32_t>> work;
    for (Seq& s : seqs) work.push_back({&s, 1});
    Step(m, work);
  }
  ASSERT_FALSE(HasFatalFailure());
  for (int i = 0; i < 8; ++i)
    ExpectSameRows(seqs[i].tokens, seqs[i].rows, alone[i], "sequence " + std::to_string(i));
  for (Seq& s : seqs) Release(m, s);
}

TEST_P(InvarianceTest, ResultsDoNotDependOnTheBlockSize) {
  // Against a model with 16-token blocks (or 1-token pages when this one has 16).
  const int32_t other_bs = std::get<1>(GetParam()) == 16 ? 1 : 16;
  auto other = LoadModel(std::get<0>(GetParam()), other_bs);
  ASSERT_NE(other, nullptr);
  const std::vector<int32_t> tokens = RandomTokens(70, model_->vocab, 6);
  ExpectSameRows(
      tokens, RunAlone(*model_, tokens, {7, 63}), RunAlone(*other, tokens, {70}),
      "block size " + std::to_string(std::get<1>(GetParam())) + " vs " + std::to_string(other_bs));
}

TEST(ForwardOutputsTest, ChosenLogitRowsComeToTheHostAlone) {
  // The engine samples most rows on the device and copies only the others' logits: those
  // must be exactly the rows a full copy holds, in the order asked.
  auto model = LoadModel("llama_gqa4_llama3rope_classic", 4);
  ASSERT_NE(model, nullptr);
  Model& m = *model;
  Seq a, b;
  a.tokens = RandomTokens(6, m.vocab, 7);
  b.tokens = RandomTokens(5, m.vocab, 8);
  std::vector<SequenceChunk> chunks;
  for (Seq* s : {&a, &b}) {
    ASSERT_OK(EnsureBlocks(*m.pool, m.block_size, static_cast<int32_t>(s->tokens.size()), &s->blocks));
    chunks.push_back({s->tokens, 0, s->blocks, LogitRows::kAll});
  }
  const ForwardBatch batch = BuildForwardBatch(chunks, m.block_size);
  ASSERT_EQ(batch.logit_rows.size(), 11u);
  std::vector<float> all;
  ASSERT_OK(m.lm->Forward(batch, m.cache->tensors(), &all));
  // Again (the same KV is rewritten), sampling every row and copying rows 1, 2, 7 and 10.
  const std::vector<int32_t> want = {1, 2, 7, 10};
  const std::vector<DeviceSamplingParams> greedy(11);
  std::vector<float> some;
  std::vector<int32_t> tokens;
  ForwardOutputs out;
  out.logits = &some;
  out.logit_rows_to_host = want;
  out.sampling = greedy;
  out.tokens = &tokens;
  ASSERT_OK(m.lm->Forward(batch, m.cache->tensors(), out));
  ASSERT_EQ(some.size(), want.size() * m.vocab);
  ASSERT_EQ(tokens.size(), 11u);
  for (size_t i = 0; i < want.size(); ++i) {
    const float* full = all.data() + want[i] * m.vocab;
    EXPECT_TRUE(std::equal(full, full + m.vocab, some.data() + i * m.vocab)) << "row " << want[i];
    EXPECT_EQ(tokens[want[i]], std::max_element(full, full + m.vocab) - full) << "row " << want[i];
  }
  // A row past the batch's logit rows is refused.
  const std::vector<int32_t> past = {3, 11};
  out.logit_rows_to_host = past;
  EXPECT_EQ(m.lm->Forward(batch, m.cache->tensors(), out).code(), StatusCode::kInvalidArgument);
  Release(m, a);
  Release(m, b);
}

INSTANTIATE_TEST_SUITE_P(
    Checkpoints, InvarianceTest,
    ::testing::Combine(::testing::Values("llama_gqa4_llama3rope_classic", "llama_headdim128_gqa4",
                                         "mistral_sliding40_f32", "qwen2_qkvbias_tied",
                                         "qwen3_moe_fused", "mixtral_per_expert_sharded"),
                       ::testing::Values(1, 7, 16)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_block" + std::to_string(std::get<1>(info.param));
    });

}  // namespace
}  // namespace tokenfab
