// Engine::Generate and Engine::Score end to end on golden checkpoints: batching, chunked
// prefill and recompute-preemption change nothing about greedy results; stop conditions end
// requests with the right finish reason; seeded sampling is reproducible inside any batch;
// requests that cannot fit fail fast with ResourceExhausted.
//
// Greedy outputs of two runs are compared token for token up to the first step where the
// reference run's top-2 log-prob gap is under kGapThreshold: there, f32 rounding differences of
// ~1e-6 between batch shapes could legitimately flip the argmax (as in golden_test.cc).
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "backend/backend_registry.h"
#include "base/random.h"
#include "checkpoint_files.h"
#include "test_util.h"

namespace tokenfab {
namespace {

constexpr double kGapThreshold = 1e-4;
constexpr double kLogprobTolerance = 1e-5;

EngineConfig BaseConfig(const std::string& model_dir) {
  EngineConfig c;
  c.model_dir = model_dir;
  c.num_threads = 2;
  c.kv_cache_bytes = 32ull << 20;
  return c;
}

std::unique_ptr<Engine> MakeEngine(const EngineConfig& config) {
  RegisterBuiltinBackends();
  auto engine = Engine::Create(config);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

std::string Golden(const std::string& name) { return testing::TestDataPath("models/" + name); }

std::vector<int32_t> RandomTokens(int n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>(HashCounter(seed, 2, i) % vocab);
  return t;
}

GenerationRequest Greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0.0;
  r.sampling.num_logprobs = 2;  // the top-2 gap tells where rounding could flip the argmax
  r.stop.max_tokens = max_tokens;
  r.stop.ignore_eos = true;
  return r;
}

// Runs `fn` on another thread and waits at most `seconds` for it: a scheduler that stops making
// progress fails the test instead of hanging CI. (A hung engine cannot be joined, so the
// process exits.)
template <typename Fn>
auto WithDeadline(int seconds, Fn fn) -> decltype(fn()) {
  auto future = std::async(std::launch::async, std::move(fn));
  if (future.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready) {
    ADD_FAILURE() << "no result within " << seconds << " s: the engine hangs";
    std::fflush(nullptr);
    std::_Exit(1);
  }
  return future.get();
}

// Compares greedy results token by token up to the first near-tie of `want`; their log-probs
// to kLogprobTolerance. Returns the number of tokens compared.
size_t ExpectSameGreedy(const GenerationResult& got, const GenerationResult& want,
                        const std::string& what) {
  EXPECT_EQ(got.tokens.size(), want.tokens.size()) << what;
  size_t compared = 0;
  for (size_t i = 0; i < std::min(got.tokens.size(), want.tokens.size()); ++i) {
    const SampledToken& w = want.tokens[i];
    EXPECT_NEAR(got.tokens[i].logprob, w.logprob, kLogprobTolerance) << what << " step " << i;
    if (got.tokens[i].token != w.token) {
      ADD_FAILURE() << what << ": step " << i << " gives " << got.tokens[i].token << ", not "
                    << w.token;
      break;
    }
    ++compared;
    if (w.top_logprobs.size() < 2 ||
        w.top_logprobs[0].logprob - w.top_logprobs[1].logprob < kGapThreshold) {
      break;  // a near-tie: the continuations may legitimately part here
    }
  }
  return compared;
}

// ---------------------------------------------------------------------------------------------

class EngineGenerateTest : public ::testing::TestWithParam<std::string> {};

// Prompts of different lengths (1 token to more than a 16-token block, to 97) and budgets.
std::vector<GenerationRequest> MixedRequests(int64_t vocab) {
  std::vector<GenerationRequest> r;
  const int prompt_lens[] = {1, 7, 17, 40, 97};
  const int max_tokens[] = {12, 5, 20, 9, 16};
  for (int i = 0; i < 5; ++i)
    r.push_back(Greedy(RandomTokens(prompt_lens[i], vocab, i), max_tokens[i]));
  return r;
}

std::vector<GenerationResult> RunAlone(Engine& engine, const std::vector<GenerationRequest>& rs) {
  std::vector<GenerationResult> out;
  for (const GenerationRequest& r : rs) {
    auto result = engine.Generate({r});
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    out.push_back(result.ok() ? result->front() : GenerationResult());
  }
  return out;
}

TEST_P(EngineGenerateTest, BatchedRequestsMatchEachRunAlone) {
  auto engine = MakeEngine(BaseConfig(Golden(GetParam())));
  ASSERT_NE(engine, nullptr);
  const auto requests = MixedRequests(engine->model_config().vocab_size);
  const auto alone = RunAlone(*engine, requests);
  ASSERT_OK_AND_ASSIGN(const auto batched, engine->Generate(requests));
  ASSERT_EQ(batched.size(), requests.size());
  size_t compared = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(batched[i].tokens.size(), static_cast<size_t>(requests[i].stop.max_tokens));
    EXPECT_EQ(batched[i].finish_reason, FinishReason::kLength);
    compared += ExpectSameGreedy(batched[i], alone[i], "request " + std::to_string(i));
  }
  EXPECT_GT(compared, 30u) << "too few tokens compared for the test to mean anything";
  EXPECT_EQ(engine->block_pool().num_used(), 0) << "KV blocks leaked";
}

TEST_P(EngineGenerateTest, ChunkedPrefillAndFewSlotsChangeNothing) {
  auto reference = MakeEngine(BaseConfig(Golden(GetParam())));
  ASSERT_NE(reference, nullptr);
  const auto requests = MixedRequests(reference->model_config().vocab_size);
  ASSERT_OK_AND_ASSIGN(const auto want, reference->Generate(requests));
  EngineConfig c = BaseConfig(Golden(GetParam()));
  c.max_batch_tokens = 7;  // prompts prefilled in 7-token chunks next to decodes
  c.max_seqs = 2;          // at most two sequences at a time
  c.block_size = 5;
  auto engine = MakeEngine(c);
  ASSERT_NE(engine, nullptr);
  ASSERT_OK_AND_ASSIGN(const auto got, engine->Generate(requests));
  for (size_t i = 0; i < requests.size(); ++i) {
    ExpectSameGreedy(got[i], want[i], "request " + std::to_string(i));
  }
  EXPECT_GT(engine->stats().steps, reference->stats().steps);
}

TEST_P(EngineGenerateTest, PreemptionUnderATinyKvCacheGivesTheSameTokens) {
  auto reference = MakeEngine(BaseConfig(Golden(GetParam())));
  ASSERT_NE(reference, nullptr);
  const int64_t vocab = reference->model_config().vocab_size;
  // Four requests of 30 + 20 tokens: each needs 13 blocks of 4; the cache holds 26 blocks.
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Greedy(RandomTokens(30, vocab, 50 + i), 20));
  const auto alone = RunAlone(*reference, requests);
  EngineConfig c = BaseConfig(Golden(GetParam()));
  c.block_size = 4;
  c.num_kv_blocks = 26;
  auto engine = MakeEngine(c);
  ASSERT_NE(engine, nullptr);
  ASSERT_OK_AND_ASSIGN(const auto got,
                       WithDeadline(120, [&] { return engine->Generate(requests); }));
  EXPECT_GT(engine->stats().preemptions, 0) << "the cache was meant to be too small for all four";
  size_t compared = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(got[i].tokens.size(), 20u);
    compared += ExpectSameGreedy(got[i], alone[i], "request " + std::to_string(i));
  }
  EXPECT_GT(compared, 20u);
  EXPECT_EQ(engine->block_pool().num_free(), 26) << "KV blocks leaked";
  // Recomputation shows in the prefill count.
  EXPECT_GT(engine->stats().prompt_tokens, 4 * 30);
  EXPECT_EQ(engine->stats().generated_tokens, 4 * 20);
}

TEST_P(EngineGenerateTest, GeneratedLogprobsEqualScoringTheContinuation) {
  // Decoding (KV cache grown one token at a time, batched) and teacher-forced scoring of the
  // same tokens compute the same distributions.
  auto engine = MakeEngine(BaseConfig(Golden(GetParam())));
  ASSERT_NE(engine, nullptr);
  const auto requests = MixedRequests(engine->model_config().vocab_size);
  ASSERT_OK_AND_ASSIGN(const auto results, engine->Generate(requests));
  for (size_t r = 0; r < requests.size(); ++r) {
    std::vector<int32_t> all = requests[r].prompt;
    for (const SampledToken& t : results[r].tokens) all.push_back(t.token);
    ASSERT_OK_AND_ASSIGN(const ScoreResult score, engine->Score(all));
    const size_t p = requests[r].prompt.size();
    for (size_t i = 0; i < results[r].tokens.size(); ++i) {
      EXPECT_NEAR(results[r].tokens[i].logprob, score.next_logprob[p - 1 + i], kLogprobTolerance)
          << "request " << r << " step " << i;
      const auto& top = results[r].tokens[i].top_logprobs;
      if (top[0].logprob - top[1].logprob >= kGapThreshold) {
        EXPECT_EQ(score.argmax[p - 1 + i], results[r].tokens[i].token);
      }
    }
  }
}

TEST_P(EngineGenerateTest, SeededSamplingIsReproducibleInAnyBatch) {
  auto engine = MakeEngine(BaseConfig(Golden(GetParam())));
  ASSERT_NE(engine, nullptr);
  const int64_t vocab = engine->model_config().vocab_size;
  GenerationRequest r;
  r.prompt = RandomTokens(9, vocab, 70);
  r.sampling.temperature = 1.0;
  r.sampling.seed = 42;
  r.stop.max_tokens = 24;
  r.stop.ignore_eos = true;
  auto tokens = [](const GenerationResult& g) {
    std::vector<int32_t> t;
    for (const SampledToken& s : g.tokens) t.push_back(s.token);
    return t;
  };
  ASSERT_OK_AND_ASSIGN(const auto first, engine->Generate({r}));
  ASSERT_OK_AND_ASSIGN(const auto again, engine->Generate({r}));
  EXPECT_EQ(tokens(again[0]), tokens(first[0]));
  // The same request inside a batch, next to others, keeps its tokens.
  std::vector<GenerationRequest> batch = MixedRequests(vocab);
  batch.insert(batch.begin() + 2, r);
  ASSERT_OK_AND_ASSIGN(const auto in_batch, engine->Generate(batch));
  EXPECT_EQ(tokens(in_batch[2]), tokens(first[0]));
  // Another seed, other tokens (24 draws at temperature 1 over ~1000 tokens).
  r.sampling.seed = 43;
  ASSERT_OK_AND_ASSIGN(const auto other, engine->Generate({r}));
  EXPECT_NE(tokens(other[0]), tokens(first[0]));
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, EngineGenerateTest,
                         ::testing::Values("llama_gqa4_llama3rope_classic", "qwen3_moe_fused"),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------------------------
// Stop conditions. The greedy continuation of a fixed prompt is learnt first; its tokens then
// serve as stop tokens and as the model's EOS.

class EngineStopTest : public ::testing::Test {
 protected:
  static constexpr const char* kModel = "llama_gqa4_llama3rope_classic";
  void SetUp() override {
    auto engine = MakeEngine(BaseConfig(Golden(kModel)));
    ASSERT_NE(engine, nullptr);
    prompt_ = RandomTokens(11, engine->model_config().vocab_size, 80);
    ASSERT_OK_AND_ASSIGN(const auto free_run, engine->Generate({Greedy(prompt_, 12)}));
    for (const SampledToken& t : free_run[0].tokens) continuation_.push_back(t.token);
    // The first step k >= 2 whose token did not appear earlier in the continuation (so that
    // stopping on it stops exactly there).
    for (size_t k = 2; k < continuation_.size(); ++k) {
      if (std::find(continuation_.begin(), continuation_.begin() + k, continuation_[k]) ==
          continuation_.begin() + k) {
        stop_step_ = static_cast<int>(k);
        break;
      }
    }
    ASSERT_GE(stop_step_, 2) << "continuation repeats itself; pick another prompt seed";
  }
  std::vector<int32_t> prompt_;
  std::vector<int32_t> continuation_;
  int stop_step_ = -1;
};

TEST_F(EngineStopTest, MaxTokensEndsWithFinishReasonLength) {
  auto engine = MakeEngine(BaseConfig(Golden(kModel)));
  ASSERT_NE(engine, nullptr);
  for (int32_t n : {1, 2, 7}) {
    ASSERT_OK_AND_ASSIGN(const auto r, engine->Generate({Greedy(prompt_, n)}));
    ASSERT_EQ(r[0].tokens.size(), static_cast<size_t>(n));
    EXPECT_EQ(r[0].finish_reason, FinishReason::kLength);
    for (int32_t i = 0; i < n; ++i) EXPECT_EQ(r[0].tokens[i].token, continuation_[i]);
  }
}

TEST_F(EngineStopTest, StopTokenIdsEndWithTheStopTokenIncluded) {
  auto engine = MakeEngine(BaseConfig(Golden(kModel)));
  ASSERT_NE(engine, nullptr);
  GenerationRequest r = Greedy(prompt_, 12);
  r.stop.stop_token_ids = {continuation_[stop_step_], 1000000};
  ASSERT_OK_AND_ASSIGN(const auto got, engine->Generate({r}));
  ASSERT_EQ(got[0].tokens.size(), static_cast<size_t>(stop_step_ + 1));
  EXPECT_EQ(got[0].tokens.back().token, continuation_[stop_step_]);
  EXPECT_EQ(got[0].finish_reason, FinishReason::kStop);
  // Stopping on the very first token.
  r.stop.stop_token_ids = {continuation_[0]};
  ASSERT_OK_AND_ASSIGN(const auto first, engine->Generate({r}));
  EXPECT_EQ(first[0].tokens.size(), 1u);
  EXPECT_EQ(first[0].finish_reason, FinishReason::kStop);
  // A stop id that also ends max_tokens: the stop wins.
  r.stop.stop_token_ids = {continuation_[stop_step_]};
  r.stop.max_tokens = stop_step_ + 1;
  ASSERT_OK_AND_ASSIGN(const auto both, engine->Generate({r}));
  EXPECT_EQ(both[0].finish_reason, FinishReason::kStop);
}

TEST_F(EngineStopTest, EosEndsUnlessIgnored) {
  // A copy of the model whose config names the continuation's token as (one of) its EOS ids.
  testing::ScopedTempDir dir("eos_model");
  testing::CopyGoldenModel(kModel, dir);
  testing::EditConfig(dir.path(), [&](Json& c) {
    c["eos_token_id"] = {999999, continuation_[stop_step_]};
  });
  auto engine = MakeEngine(BaseConfig(dir.path()));
  ASSERT_NE(engine, nullptr);
  ASSERT_EQ(engine->model_config().eos_token_ids.size(), 2u);
  GenerationRequest r = Greedy(prompt_, 12);
  r.stop.ignore_eos = false;
  ASSERT_OK_AND_ASSIGN(const auto stopped, engine->Generate({r}));
  ASSERT_EQ(stopped[0].tokens.size(), static_cast<size_t>(stop_step_ + 1));
  EXPECT_EQ(stopped[0].tokens.back().token, continuation_[stop_step_]);
  EXPECT_EQ(stopped[0].finish_reason, FinishReason::kStop);
  r.stop.ignore_eos = true;
  ASSERT_OK_AND_ASSIGN(const auto ignored, engine->Generate({r}));
  ASSERT_EQ(ignored[0].tokens.size(), 12u);
  EXPECT_EQ(ignored[0].finish_reason, FinishReason::kLength);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(ignored[0].tokens[i].token, continuation_[i]);
  // A single integer eos_token_id works the same way.
  testing::EditConfig(dir.path(), [&](Json& c) { c["eos_token_id"] = continuation_[stop_step_]; });
  auto single = MakeEngine(BaseConfig(dir.path()));
  ASSERT_NE(single, nullptr);
  r.stop.ignore_eos = false;
  ASSERT_OK_AND_ASSIGN(const auto single_stopped, single->Generate({r}));
  EXPECT_EQ(single_stopped[0].tokens.size(), static_cast<size_t>(stop_step_ + 1));
}

// Every output says when a step first ran the request (the server's queue / prefill split of
// its time to first token): after it was added, before its first token came, the same each time.
TEST(EngineTimingTest, OutputsCarryTheFirstScheduledStep) {
  EngineConfig c = BaseConfig(Golden("llama_gqa4_llama3rope_classic"));
  c.max_batch_tokens = 8;  // a 20-token prompt takes three steps
  auto engine = MakeEngine(c);
  ASSERT_NE(engine, nullptr);
  EngineRequest r;
  r.prompt = RandomTokens(20, engine->model_config().vocab_size, 4);
  r.stop.max_tokens = 3;
  std::vector<RequestOutput> outputs;
  std::vector<std::chrono::steady_clock::time_point> received;
  const auto added = std::chrono::steady_clock::now();
  ASSERT_OK(engine->AddRequest(1, r, [&](RequestOutput&& out) {
    received.push_back(std::chrono::steady_clock::now());
    outputs.push_back(std::move(out));
  }));
  while (engine->HasWork()) ASSERT_OK(engine->Step());
  ASSERT_EQ(outputs.size(), 3u);
  EXPECT_TRUE(outputs.back().finished);
  for (const RequestOutput& out : outputs) {
    EXPECT_GE(out.first_scheduled, added);
    EXPECT_LT(out.first_scheduled, received.front());
    EXPECT_EQ(out.first_scheduled, outputs.front().first_scheduled);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests that can never fit, and bad requests.

TEST(EngineLimitsTest, ARequestThatCanNeverFitIsResourceExhaustedNotAHang) {
  EngineConfig c = BaseConfig(Golden("qwen2_qkvbias_tied"));
  c.block_size = 4;
  c.num_kv_blocks = 4;  // 16 tokens in all
  auto engine = MakeEngine(c);
  ASSERT_NE(engine, nullptr);
  const int64_t vocab = engine->model_config().vocab_size;
  auto too_big = Greedy(RandomTokens(10, vocab, 90), 7);  // 17 tokens
  const auto result = WithDeadline(60, [&] { return engine->Generate({too_big}); });
  EXPECT_EQ(result.status().code(), StatusCode::kResourceExhausted) << result.status().ToString();
  // Also when it is one of several requests that would fit.
  const auto mixed = WithDeadline(60, [&] {
    return engine->Generate({Greedy(RandomTokens(3, vocab, 91), 2), too_big});
  });
  EXPECT_EQ(mixed.status().code(), StatusCode::kResourceExhausted);
  // A prompt longer than the cache, whatever max_tokens.
  const auto long_prompt =
      WithDeadline(60, [&] { return engine->Generate({Greedy(RandomTokens(17, vocab, 92), 1)}); });
  EXPECT_EQ(long_prompt.status().code(), StatusCode::kResourceExhausted);
  const auto score = WithDeadline(60, [&] { return engine->Score(RandomTokens(17, vocab, 93)); });
  EXPECT_EQ(score.status().code(), StatusCode::kResourceExhausted);
  // Exactly full still works, and nothing leaked from the failures.
  const auto fits =
      WithDeadline(60, [&] { return engine->Generate({Greedy(RandomTokens(10, vocab, 94), 6)}); });
  ASSERT_OK(fits);
  EXPECT_EQ(fits->front().tokens.size(), 6u);
  ASSERT_OK(WithDeadline(60, [&] { return engine->Score(RandomTokens(16, vocab, 95)); }));
  EXPECT_EQ(engine->block_pool().num_free(), 4);
}

TEST(EngineLimitsTest, ManyRequestsThroughATinyCacheAllFinish) {
  // Twelve requests through a cache that holds about two of them at once.
  EngineConfig c = BaseConfig(Golden("qwen3_moe_fused"));
  c.block_size = 2;
  c.num_kv_blocks = 20;
  c.max_batch_tokens = 9;
  auto engine = MakeEngine(c);
  ASSERT_NE(engine, nullptr);
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 12; ++i) {
    requests.push_back(
        Greedy(RandomTokens(3 + i, engine->model_config().vocab_size, 100 + i), 8 + i % 5));
  }
  ASSERT_OK_AND_ASSIGN(const auto results,
                       WithDeadline(120, [&] { return engine->Generate(requests); }));
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(results[i].tokens.size(), static_cast<size_t>(requests[i].stop.max_tokens)) << i;
  }
  EXPECT_EQ(engine->block_pool().num_free(), 20);
}

TEST(EngineLimitsTest, BadRequestsAreInvalidArgumentsNamingTheRequest) {
  auto engine = MakeEngine(BaseConfig(Golden("qwen2_qkvbias_tied")));
  ASSERT_NE(engine, nullptr);
  const int32_t vocab = static_cast<int32_t>(engine->model_config().vocab_size);
  const GenerationRequest good = Greedy({1, 2, 3}, 2);
  auto expect_invalid = [&](GenerationRequest bad, const std::string& needle) {
    const auto r = engine->Generate({good, bad});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("request 1"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  expect_invalid(Greedy({}, 2), "empty");
  expect_invalid(Greedy({1, vocab}, 2), std::to_string(vocab));
  expect_invalid(Greedy({-1}, 2), "-1");
  GenerationRequest bad_sampling = good;
  bad_sampling.sampling.top_p = 0.0;
  expect_invalid(bad_sampling, "top_p");
  GenerationRequest bad_stop = good;
  bad_stop.stop.max_tokens = 0;
  expect_invalid(bad_stop, "max_tokens");
  EXPECT_EQ(engine->Score(std::vector<int32_t>{}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->Score(std::vector<int32_t>{0, vocab}).status().code(),
            StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(const auto none, engine->Generate({}));
  EXPECT_TRUE(none.empty());
}

TEST(EngineLimitsTest, ConfigValidation) {
  EngineConfig c = BaseConfig(Golden("qwen2_qkvbias_tied"));
  EXPECT_OK(c.Validate());
  auto code = [&](auto edit) {
    EngineConfig e = c;
    edit(e);
    return e.Validate().code();
  };
  EXPECT_EQ(code([](EngineConfig& e) { e.block_size = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](EngineConfig& e) { e.block_size = 1025; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](EngineConfig& e) { e.max_batch_tokens = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](EngineConfig& e) { e.max_seqs = 0; }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](EngineConfig& e) { e.num_kv_blocks = -1; }), StatusCode::kInvalidArgument);
  c.device = "no-such-device";
  EXPECT_EQ(Engine::Create(c).status().code(), StatusCode::kNotFound);
}

// Score against itself in chunks: the scoring chunk (max_batch_tokens, at most 256) does not
// change the log-probs.
TEST(EngineScoreTest, ChunkedScoringMatchesOnePass) {
  auto one = MakeEngine(BaseConfig(Golden("mistral_sliding40_f32")));
  EngineConfig c = BaseConfig(Golden("mistral_sliding40_f32"));
  c.max_batch_tokens = 6;
  c.block_size = 3;
  auto chunked = MakeEngine(c);
  ASSERT_NE(one, nullptr);
  ASSERT_NE(chunked, nullptr);
  const std::vector<int32_t> tokens = RandomTokens(300, one->model_config().vocab_size, 110);
  ASSERT_OK_AND_ASSIGN(const ScoreResult a, one->Score(tokens));
  ASSERT_OK_AND_ASSIGN(const ScoreResult b, chunked->Score(tokens));
  ASSERT_EQ(a.next_logprob.size(), 299u);
  ASSERT_EQ(a.argmax.size(), 300u);
  ASSERT_EQ(b.next_logprob.size(), 299u);
  for (size_t i = 0; i < a.next_logprob.size(); ++i) {
    EXPECT_NEAR(a.next_logprob[i], b.next_logprob[i], kLogprobTolerance) << i;
  }
  ASSERT_OK_AND_ASSIGN(const ScoreResult single, one->Score(std::vector<int32_t>{5}));
  EXPECT_TRUE(single.next_logprob.empty());
  EXPECT_EQ(single.argmax.size(), 1u);
}

}  // namespace
}  // namespace tokenfab
