// The online engine: prefix caching through the step loop (exact reuse, salts, pins),
// priorities, cancellation, and AsyncEngine's owner thread (submission from many threads,
// admission control, drain). Every wait is bounded.
#include "engine/async_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend_registry.h"
#include "base/json.h"
#include "base/random.h"
#include "test_util.h"

namespace tokenfab {
namespace {

constexpr const char* kModel = "llama_gqa4_llama3rope_classic";

EngineConfig Config() {
  EngineConfig c;
  c.model_dir = testing::TestDataPath(std::string("models/") + kModel);
  c.num_threads = 2;
  c.block_size = 4;
  c.num_kv_blocks = 64;
  c.block_hash_key = SipKey{};
  return c;
}

std::unique_ptr<Engine> MakeEngine(const EngineConfig& c) {
  RegisterBuiltinBackends();
  auto engine = Engine::Create(c);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

std::vector<int32_t> Tokens(int n, uint64_t seed) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>(HashCounter(seed, 3, i) % 1000);
  return t;
}

EngineRequest Greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  EngineRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0.0;
  r.sampling.num_logprobs = 0;
  r.stop.max_tokens = max_tokens;
  r.stop.ignore_eos = true;
  return r;
}

// Runs requests through AddRequest / Step to completion, collecting outputs per id.
struct Collected {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  RequestOutput last;
  int outputs = 0;
};
std::map<int64_t, Collected> RunAll(Engine& e, std::vector<std::pair<int64_t, EngineRequest>> rs,
                                 std::vector<int64_t>* finish_order = nullptr) {
  std::map<int64_t, Collected> got;
  for (auto& [id, r] : rs) {
    EXPECT_OK(e.AddRequest(id, std::move(r), [&got, finish_order, id = id](RequestOutput&& o) {
      Collected& c = got[id];
      ++c.outputs;
      for (const SampledToken& t : o.tokens) {
        c.tokens.push_back(t.token);
        c.logprobs.push_back(t.logprob);
      }
      if (o.finished && finish_order) finish_order->push_back(id);
      c.last = std::move(o);
    }));
  }
  for (int i = 0; e.HasWork() && i < 10000; ++i) EXPECT_OK(e.Step());
  EXPECT_FALSE(e.HasWork());
  return got;
}

TEST(PrefixCachingTest, ASharedPrefixIsReusedAndGivesTheSameTokens) {
  auto cached = MakeEngine(Config());
  EngineConfig off = Config();
  off.enable_prefix_caching = false;
  auto uncached = MakeEngine(off);
  ASSERT_NE(cached, nullptr);
  ASSERT_NE(uncached, nullptr);
  const std::vector<int32_t> system = Tokens(21, 1);  // 5 full blocks of 4, and one token
  std::vector<int32_t> a = system, b = system;
  for (int32_t t : Tokens(6, 2)) a.push_back(t);
  for (int32_t t : Tokens(9, 3)) b.push_back(t);
  auto first = RunAll(*cached, {{1, Greedy(a, 8)}});
  EXPECT_EQ(first[1].last.cached_prompt_tokens, 0);
  auto second = RunAll(*cached, {{2, Greedy(b, 8)}});
  EXPECT_EQ(second[2].last.cached_prompt_tokens, 20) << "the 5 full blocks of the shared prefix";
  EXPECT_EQ(cached->stats().prefix_hit_tokens, 20);
  auto want = RunAll(*uncached, {{2, Greedy(b, 8)}});
  EXPECT_EQ(second[2].tokens, want[2].tokens);
  for (size_t i = 0; i < want[2].logprobs.size(); ++i) {
    EXPECT_NEAR(second[2].logprobs[i], want[2].logprobs[i], 1e-5) << i;
  }
  // The whole of a finished request's prompt and output is cached: resubmitting it computes
  // only its last token.
  auto again = RunAll(*cached, {{3, Greedy(a, 8)}});
  EXPECT_EQ(again[3].last.cached_prompt_tokens, 24);
  EXPECT_EQ(again[3].tokens, first[1].tokens);
  EXPECT_EQ(cached->block_pool().num_used(), 0);
  EXPECT_GT(cached->block_pool().num_evictable(), 0);
}

TEST(PrefixCachingTest, CacheSaltsIsolateTenants) {
  auto e = MakeEngine(Config());
  ASSERT_NE(e, nullptr);
  EngineRequest r = Greedy(Tokens(17, 4), 2);
  r.cache_salt = "tenant-a";
  RunAll(*e, {{1, r}});
  r.cache_salt = "tenant-b";
  auto other = RunAll(*e, {{2, r}});
  EXPECT_EQ(other[2].last.cached_prompt_tokens, 0);
  r.cache_salt = "tenant-a";
  auto same = RunAll(*e, {{3, r}});
  EXPECT_EQ(same[3].last.cached_prompt_tokens, 16);
  // Events: stored blocks name their salt.
  const auto page = e->kv_events().Read(0, 1000);
  ASSERT_FALSE(page.events.empty());
  EXPECT_EQ(page.events.front().type, KvEvent::Type::kBlockStored);
  EXPECT_EQ(page.events.front().cache_salt, "tenant-a");
}

TEST(PrefixCachingTest, APinnedPrefixSurvivesPressure) {
  EngineConfig c = Config();
  c.num_kv_blocks = 16;
  auto e = MakeEngine(c);
  ASSERT_NE(e, nullptr);
  EngineRequest pin = Greedy(Tokens(16, 5), 1);
  pin.pin_prefix = true;
  RunAll(*e, {{1, pin}});
  EXPECT_EQ(e->prefix_cache().num_pinned(), 4);
  EXPECT_EQ(e->max_sequence_tokens(), 12 * 4);
  // Fill the rest of the cache many times over with other prompts.
  for (int i = 0; i < 6; ++i) RunAll(*e, {{10 + i, Greedy(Tokens(30, 100 + i), 10)}});
  std::vector<int32_t> p = Tokens(16, 5);
  p.push_back(7);
  auto hit = RunAll(*e, {{2, Greedy(p, 2)}});
  EXPECT_EQ(hit[2].last.cached_prompt_tokens, 16);
  // A request that fits only without the pins is refused up front.
  EXPECT_EQ(e->AddRequest(3, Greedy(Tokens(40, 6), 9), [](RequestOutput&&) {}).code(),
            StatusCode::kResourceExhausted);
}

TEST(EngineSamplingTest, EachRowSamplesOnItsOwnPath) {
  // Rows without penalties or top log-probs are sampled by the backend's Sample op, the others
  // by the host Sampler after their logits come back. Both apply one rule, so a request gets
  // the same tokens either way, and a row's path is its own, whatever shares its batch.
  auto e = MakeEngine(Config());
  ASSERT_NE(e, nullptr);
  EngineRequest greedy = Greedy(Tokens(13, 11), 12);
  EngineRequest random = greedy;
  random.sampling.temperature = 0.8;
  random.sampling.top_k = 40;
  random.sampling.top_p = 0.9;
  random.sampling.seed = 7;
  for (const EngineRequest& device : {greedy, random}) {
    SCOPED_TRACE(device.sampling.greedy() ? "greedy" : "seeded random");
    EngineRequest host = device;
    host.sampling.num_logprobs = 2;  // top log-probs: the host's job
    EngineRequest other = host;      // another host row, with another prompt
    other.prompt = Tokens(9, 12);
    const int64_t before = e->stats().device_sampled_tokens;
    auto alone = RunAll(*e, {{1, device}});
    EXPECT_EQ(e->stats().device_sampled_tokens - before, 12);
    auto on_host = RunAll(*e, {{2, host}});
    EXPECT_EQ(e->stats().device_sampled_tokens - before, 12);
    ASSERT_EQ(alone[1].tokens.size(), 12u);
    EXPECT_EQ(on_host[2].tokens, alone[1].tokens);
    for (size_t i = 0; i < 12; ++i) EXPECT_NEAR(on_host[2].logprobs[i], alone[1].logprobs[i], 1e-5);
    // In one batch with host rows, the device row stays on the device, with the same tokens.
    auto mixed = RunAll(*e, {{3, device}, {4, other}, {5, host}});
    EXPECT_EQ(e->stats().device_sampled_tokens - before, 24);
    EXPECT_EQ(mixed[3].tokens, alone[1].tokens);
    EXPECT_EQ(mixed[5].tokens, alone[1].tokens);
    EXPECT_EQ(mixed[4].tokens.size(), 12u);
  }
}

TEST(EngineSamplingTest, LogitBiasSteersTheTokensOnTheHost) {
  auto e = MakeEngine(Config());
  ASSERT_NE(e, nullptr);
  EngineRequest forced = Greedy(Tokens(13, 11), 6);
  forced.sampling.num_logprobs = -1;
  forced.sampling.logit_bias = {{42, 100.0f}};
  const int64_t before = e->stats().device_sampled_tokens;
  auto got = RunAll(*e, {{1, forced}});
  EXPECT_EQ(got[1].tokens, std::vector<int32_t>(6, 42));
  EXPECT_EQ(e->stats().device_sampled_tokens, before) << "biased rows are sampled on the host";
  EngineRequest outside = forced;
  outside.sampling.logit_bias = {{static_cast<int32_t>(e->model_config().vocab_size), 1.0f}};
  EXPECT_EQ(e->AddRequest(2, outside, [](RequestOutput&&) {}).code(), StatusCode::kInvalidArgument);
}

TEST(EnginePriorityTest, BetterPriorityRunsFirst) {
  EngineConfig c = Config();
  c.max_seqs = 1;
  auto e = MakeEngine(c);
  ASSERT_NE(e, nullptr);
  EngineRequest low = Greedy(Tokens(5, 7), 4), high = Greedy(Tokens(5, 8), 4);
  low.priority = 5;
  high.priority = -1;
  std::vector<int64_t> order;
  RunAll(*e, {{1, low}, {2, high}}, &order);
  EXPECT_EQ(order, (std::vector<int64_t>{2, 1}));
}

TEST(EngineAbortTest, AbortFreesTheKvAtOnceAndSaysCancelled) {
  auto e = MakeEngine(Config());
  ASSERT_NE(e, nullptr);
  RequestOutput last;
  ASSERT_OK(e->AddRequest(1, Greedy(Tokens(30, 9), 100), [&](RequestOutput&& o) { last = o; }));
  ASSERT_OK(e->Step());
  ASSERT_OK(e->Step());
  EXPECT_GT(e->block_pool().num_used(), 0);
  e->AbortRequest(1);
  EXPECT_TRUE(last.finished);
  EXPECT_EQ(last.finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(e->block_pool().num_used(), 0);
  EXPECT_FALSE(e->HasWork());
  e->AbortRequest(1);  // unknown now: ignored
}

TEST(EngineStepRecordTest, LastStepCountsDecodesBesideThePromptChunks) {
  EngineConfig c = Config();
  c.max_batch_tokens = 8;
  auto e = MakeEngine(c);
  ASSERT_NE(e, nullptr);
  ASSERT_OK(e->AddRequest(1, Greedy(Tokens(5, 1), 4), [](RequestOutput&&) {}));
  ASSERT_OK(e->AddRequest(2, Greedy(Tokens(20, 2), 4), [](RequestOutput&&) {}));
  ASSERT_OK(e->Step());  // both admitted: 5 prompt tokens and the first 3 of 20
  StepRecord r = e->last_step();
  EXPECT_EQ(r.admitted, 2);
  EXPECT_EQ(r.decodes, 0);
  EXPECT_EQ(r.prompt_chunks, 2);
  EXPECT_EQ(r.prompt_tokens, 8);
  EXPECT_EQ(r.context_tokens, 5 + 3);
  EXPECT_GT(r.forward_seconds, 0);
  EXPECT_GE(r.seconds, r.forward_seconds);
  ASSERT_OK(e->Step());  // request 1 decodes first, beside the next 7 prompt tokens
  r = e->last_step();
  EXPECT_EQ(r.admitted, 0);
  EXPECT_EQ(r.decodes, 1);
  EXPECT_EQ(r.prompt_chunks, 1);
  EXPECT_EQ(r.prompt_tokens, 7);
  EXPECT_EQ(r.context_tokens, 6 + 10);
}

// A thread-safe collector of one request's outputs with a bounded wait.
class Waiter {
 public:
  OutputCallback Callback() {
    return [this](RequestOutput&& o) {
      std::lock_guard<std::mutex> lock(mu_);
      tokens_ += static_cast<int>(o.tokens.size());
      if (o.finished) {
        done_ = true;
        last_ = o;
        cv_.notify_all();
      }
    };
  }
  bool Wait(int seconds = 60) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(seconds), [&] { return done_; });
  }
  RequestOutput last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  int tokens() {
    std::lock_guard<std::mutex> lock(mu_);
    return tokens_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  int tokens_ = 0;
  RequestOutput last_;
};

TEST(AsyncEngineTest, ManyThreadsSubmitAndAllFinish) {
  AsyncEngine engine(MakeEngine(Config()), AdmissionConfig{});
  constexpr int kThreads = 4, kPerThread = 5;
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 0; i < kThreads * kPerThread; ++i) waiters.push_back(std::make_unique<Waiter>());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Waiter& w = *waiters[t * kPerThread + i];
        EXPECT_OK(engine.Submit(Greedy(Tokens(3 + i, t * 10 + i), 5), w.Callback()));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (auto& w : waiters) {
    ASSERT_TRUE(w->Wait()) << "a request never finished";
    EXPECT_EQ(w->tokens(), 5);
    EXPECT_EQ(w->last().finish_reason, FinishReason::kLength);
  }
  // The snapshot is refreshed after the step that delivered the last outputs.
  EngineSnapshot s = engine.Snapshot();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s.stats.generated_tokens < kThreads * kPerThread * 5 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = engine.Snapshot();
  }
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.stats.generated_tokens, kThreads * kPerThread * 5);
  EXPECT_GT(s.tokens_per_s, 0);
}

TEST(AsyncEngineTest, TheStepLogHasALinePerStepThatAddsUpToTheWork) {
  const std::string path = testing::MakeTempDir("step_log") + "/steps.jsonl";
  constexpr int kRequests = 3, kPrompt = 9, kOutput = 4;
  {
    ASSERT_OK_AND_ASSIGN(auto log, StepLog::Open(path));
    AsyncEngine engine(MakeEngine(Config()), AdmissionConfig{}, std::move(log));
    std::vector<std::unique_ptr<Waiter>> waiters;
    for (int i = 0; i < kRequests; ++i) {
      waiters.push_back(std::make_unique<Waiter>());
      ASSERT_OK(
          engine.Submit(Greedy(Tokens(kPrompt, 40 + i), kOutput), waiters.back()->Callback()));
    }
    for (auto& w : waiters) ASSERT_TRUE(w->Wait());
  }  // the owner thread has joined: every step's line is written
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  int64_t prompt_tokens = 0, decodes = 0;
  double last_t = 0;
  while (std::getline(in, line)) {
    ASSERT_OK_AND_ASSIGN(const Json j, ParseJson(line, "step log line"));
    ++lines;
    prompt_tokens += j.at("prompt_tokens").get<int64_t>();
    decodes += j.at("decodes").get<int64_t>();
    EXPECT_GE(j.at("t").get<double>(), last_t);
    last_t = j.at("t").get<double>();
    EXPECT_GT(j.at("seconds").get<double>(), 0);
    EXPECT_GT(j.at("forward_seconds").get<double>(), 0);
    EXPECT_LE(j.at("forward_seconds").get<double>(), j.at("seconds").get<double>());
    for (const char* key : {"prompt_chunks", "context_tokens", "admitted", "preempted", "running",
                            "waiting", "kv_blocks_used"}) {
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
    }
  }
  EXPECT_GT(lines, 0);
  // Every prompt is prefilled once; each request's first token comes with its last prompt
  // chunk and the other kOutput - 1 from decodes.
  EXPECT_EQ(prompt_tokens, kRequests * kPrompt);
  EXPECT_EQ(decodes, kRequests * (kOutput - 1));
  EXPECT_EQ(StepLog::Open("/nonexistent-dir/steps.jsonl").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(AsyncEngineTest, CancelEndsARequestAndBadRequestsFailThroughTheCallback) {
  AsyncEngine engine(MakeEngine(Config()), AdmissionConfig{});
  Waiter long_one;
  ASSERT_OK_AND_ASSIGN(const int64_t id,
                       engine.Submit(Greedy(Tokens(10, 1), 200), long_one.Callback()));
  engine.Cancel(id);
  ASSERT_TRUE(long_one.Wait());
  EXPECT_EQ(long_one.last().finish_reason, FinishReason::kCancelled);
  EXPECT_LT(long_one.tokens(), 200);
  Waiter bad;
  EngineRequest r = Greedy({1, 5000000}, 2);
  ASSERT_OK(engine.Submit(r, bad.Callback()));
  ASSERT_TRUE(bad.Wait());
  EXPECT_EQ(bad.last().status.code(), StatusCode::kInvalidArgument);
}

TEST(AsyncEngineTest, AFullQueueRejectsWithRetryAfterAndDrainStopsAdmission) {
  AdmissionConfig admission;
  admission.max_waiting = 2;
  EngineConfig c = Config();
  c.max_seqs = 1;
  AsyncEngine engine(MakeEngine(c), admission);
  std::vector<std::unique_ptr<Waiter>> waiters;
  int rejected = 0;
  for (int i = 0; i < 20; ++i) {
    waiters.push_back(std::make_unique<Waiter>());
    double retry_after = 0;
    auto id = engine.Submit(Greedy(Tokens(8, i), 30), waiters.back()->Callback(), &retry_after);
    if (!id.ok()) {
      EXPECT_EQ(id.status().code(), StatusCode::kResourceExhausted);
      EXPECT_GE(retry_after, 1.0);
      ++rejected;
      waiters.pop_back();
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_TRUE(engine.Drain(std::chrono::steady_clock::now() + std::chrono::seconds(60)));
  for (auto& w : waiters) ASSERT_TRUE(w->Wait(1));
  Waiter late;
  EXPECT_EQ(engine.Submit(Greedy(Tokens(3, 1), 1), late.Callback()).status().code(),
            StatusCode::kUnavailable);
}

TEST(AsyncEngineTest, DrainPastItsDeadlineCancelsWhatIsLeft) {
  EngineConfig c = Config();
  c.max_seqs = 1;  // eight long requests one after another: far longer than the deadline
  AsyncEngine engine(MakeEngine(c), AdmissionConfig{});
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 0; i < 8; ++i) {
    waiters.push_back(std::make_unique<Waiter>());
    ASSERT_OK(engine.Submit(Greedy(Tokens(10, i), 240), waiters.back()->Callback()));
  }
  EXPECT_FALSE(engine.Drain(std::chrono::steady_clock::now() + std::chrono::milliseconds(20)));
  for (auto& w : waiters) ASSERT_TRUE(w->Wait());
  EXPECT_EQ(waiters.back()->last().finish_reason, FinishReason::kCancelled);
}

}  // namespace
}  // namespace tokenfab
