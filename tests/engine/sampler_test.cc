// The sampler's semantics (sampling_params.h): greedy, seeded reproducibility, the support and
// the distribution that temperature / top-k / top-p / min-p leave, penalties on the right
// logits by the right amounts, and log-probs of the raw distribution.
//
// Distribution tests draw 20000 tokens over consecutive steps of fixed seeds and compare
// frequencies with the renormalised softmax derived here by hand: the outcome is deterministic,
// and the 0.015 tolerance is over 4 standard deviations of a frequency yet far below the
// differences a wrong order of operations or a missing renormalisation would make.
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "base/random.h"
#include "test_util.h"

namespace tokenfab {
namespace {

constexpr int kDraws = 20000;
constexpr double kFreqTolerance = 0.015;

SamplingParams Params(double temperature) {
  SamplingParams p;
  p.temperature = temperature;
  return p;
}

std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<double> Softmax(const std::vector<float>& logits, double temperature = 1.0) {
  std::vector<double> p(logits.size());
  const double max = *std::max_element(logits.begin(), logits.end());
  double z = 0.0;
  for (size_t i = 0; i < p.size(); ++i) z += (p[i] = std::exp((logits[i] - max) / temperature));
  for (double& x : p) x /= z;
  return p;
}

// `probs` restricted to `support` and renormalised.
std::vector<double> Restrict(std::vector<double> probs, const std::vector<int>& support) {
  std::vector<double> out(probs.size(), 0.0);
  double z = 0.0;
  for (int t : support) z += probs[t];
  for (int t : support) out[t] = probs[t] / z;
  return out;
}

std::vector<double> Frequencies(const std::vector<float>& logits, const SamplingParams& params,
                                uint64_t seed) {
  Sampler sampler;
  std::vector<double> freq(logits.size(), 0.0);
  for (uint64_t step = 0; step < kDraws; ++step) {
    const int32_t t = sampler.Sample(logits, params, {}, {}, seed, step).token;
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<int32_t>(logits.size()));
    freq[t] += 1.0 / kDraws;
  }
  return freq;
}

// Tokens with zero expected probability never appear; the others within kFreqTolerance.
void ExpectDistribution(const std::vector<double>& freq, const std::vector<double>& expected) {
  ASSERT_EQ(freq.size(), expected.size());
  for (size_t t = 0; t < freq.size(); ++t) {
    if (expected[t] == 0.0) {
      EXPECT_EQ(freq[t], 0.0) << "token " << t << " is outside the support";
    } else {
      EXPECT_NEAR(freq[t], expected[t], kFreqTolerance) << "token " << t;
      EXPECT_GT(freq[t], 0.0) << "token " << t << " is in the support but never drawn";
    }
  }
}

std::vector<float> RandomLogits(int n, uint64_t seed, float scale = 4.0f) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = scale * UniformSymmetricFloat(seed, 0, i);
  return v;
}

// ---- greedy and seeds -------------------------------------------------------------------------

TEST(SamplerTest, GreedyIsTheArgmax) {
  Sampler sampler;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<float> logits = RandomLogits(1000, seed);
    const int32_t argmax =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(sampler.Sample(logits, Params(0.0), {}, {}, seed, 0).token, argmax);
    SamplingParams top1 = Params(1.5);
    top1.top_k = 1;
    EXPECT_EQ(sampler.Sample(logits, top1, {}, {}, seed, 3).token, argmax) << "top_k = 1";
  }
}

TEST(SamplerTest, GreedyTiesGoToTheLowestId) {
  Sampler sampler;
  const std::vector<float> logits = {1.0f, 5.0f, 2.0f, 5.0f};
  EXPECT_EQ(sampler.Sample(logits, Params(0.0), {}, {}, 0, 0).token, 1);
}

TEST(SamplerTest, SeededDrawsAreReproducibleAndSeedsDiffer) {
  const std::vector<float> logits = RandomLogits(500, 77, 1.0f);  // a broad distribution
  auto draw = [&](uint64_t seed) {
    Sampler sampler;  // a fresh sampler each time: no hidden state may leak between calls
    std::vector<int32_t> tokens;
    for (uint64_t step = 0; step < 64; ++step) {
      tokens.push_back(sampler.Sample(logits, Params(1.0), {}, {}, seed, step).token);
    }
    return tokens;
  };
  const std::vector<int32_t> a = draw(1234), again = draw(1234), b = draw(1235);
  EXPECT_EQ(a, again);
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_LT(same, 16) << "seeds 1234 and 1235 should give different draws";
  // The draw of step n does not depend on what was drawn before (counter-based).
  Sampler sampler;
  EXPECT_EQ(sampler.Sample(logits, Params(1.0), {}, {}, 1234, 40).token, a[40]);
}

// ---- support and distribution -----------------------------------------------------------------

const std::vector<double> kProbs = {0.4, 0.3, 0.15, 0.1, 0.05};

TEST(SamplerTest, TemperatureOneFollowsTheSoftmax) {
  ExpectDistribution(Frequencies(LogitsOf(kProbs), Params(1.0), 11), kProbs);
}

TEST(SamplerTest, TemperatureSharpensAndFlattens) {
  const std::vector<float> logits = LogitsOf(kProbs);
  ExpectDistribution(Frequencies(logits, Params(0.5), 12), Softmax(logits, 0.5));
  ExpectDistribution(Frequencies(logits, Params(2.0), 13), Softmax(logits, 2.0));
}

TEST(SamplerTest, TopKKeepsTheKMostLikely) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f, 0.7f, 1.9f, -3.0f, 0.0f};
  SamplingParams p = Params(1.0);
  p.top_k = 3;  // tokens 1, 5, 3
  ExpectDistribution(Frequencies(logits, p, 14), Restrict(Softmax(logits), {1, 5, 3}));
  p.top_k = 8;  // all of them: no restriction
  ExpectDistribution(Frequencies(logits, p, 15), Softmax(logits));
  p.top_k = 100;  // more than the vocabulary: no restriction
  ExpectDistribution(Frequencies(logits, p, 16), Softmax(logits));
}

TEST(SamplerTest, TopPKeepsTheSmallestPrefixReachingP) {
  const std::vector<float> logits = LogitsOf(kProbs);
  SamplingParams p = Params(1.0);
  p.top_p = 0.65;  // 0.4 < 0.65 <= 0.4 + 0.3
  ExpectDistribution(Frequencies(logits, p, 17), Restrict(kProbs, {0, 1}));
  p.top_p = 0.75;  // needs the third token
  ExpectDistribution(Frequencies(logits, p, 18), Restrict(kProbs, {0, 1, 2}));
  p.top_p = 0.3;  // the first token alone reaches it
  ExpectDistribution(Frequencies(logits, p, 19), Restrict(kProbs, {0}));
}

TEST(SamplerTest, TopPOverAWideVocabularyCutsAtTheExactRank) {
  // A nearly flat distribution over 5000 shuffled ids: top-p 0.5 keeps about 1900 tokens, so
  // the sampler must order far more than the first head it sorts (256, then 1024, 4096) and
  // still cut at the rank where a full sort of the probabilities reaches 0.5.
  constexpr int kVocab = 5000;
  std::vector<int> by_rank(kVocab);
  std::iota(by_rank.begin(), by_rank.end(), 0);
  for (int i = kVocab - 1; i > 0; --i) std::swap(by_rank[i], by_rank[HashCounter(31, 0, i) % (i + 1)]);
  std::vector<float> logits(kVocab);
  for (int r = 0; r < kVocab; ++r) logits[by_rank[r]] = -0.0002f * static_cast<float>(r);
  const std::vector<double> probs = Softmax(logits);
  int cut = 0;  // the last rank kept
  for (double mass = probs[by_rank[0]]; mass < 0.5; mass += probs[by_rank[++cut]]) {
  }
  ASSERT_GT(cut, 1500);
  std::vector<int> rank_of(kVocab);
  for (int r = 0; r < kVocab; ++r) rank_of[by_rank[r]] = r;
  SamplingParams p = Params(1.0);
  p.top_p = 0.5;
  Sampler sampler;
  int deepest = 0;
  for (uint64_t step = 0; step < 4000; ++step) {
    const int32_t t = sampler.Sample(logits, p, {}, {}, 33, step).token;
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kVocab);
    ASSERT_LE(rank_of[t], cut) << "drew rank " << rank_of[t] << " past the top-p cut " << cut;
    deepest = std::max(deepest, rank_of[t]);
  }
  // ~2 draws per kept token: all of the last 50 ranks before the cut go undrawn with
  // probability about e^-100.
  EXPECT_GE(deepest, cut - 50);
}

TEST(SamplerTest, TopPAppliesToTheTemperatureScaledDistribution) {
  // At temperature 2 the probabilities are ~0.30, 0.26, 0.18, 0.15, 0.11: reaching 0.65 takes
  // three tokens (on the unscaled distribution it would take two).
  const std::vector<float> logits = LogitsOf(kProbs);
  SamplingParams p = Params(2.0);
  p.top_p = 0.65;
  const std::vector<double> scaled = Softmax(logits, 2.0);
  ASSERT_LT(scaled[0] + scaled[1], 0.65);
  ASSERT_GE(scaled[0] + scaled[1] + scaled[2], 0.65);
  ExpectDistribution(Frequencies(logits, p, 20), Restrict(scaled, {0, 1, 2}));
}

TEST(SamplerTest, MinPDropsTokensBelowAFractionOfTheBest) {
  const std::vector<float> logits = LogitsOf(kProbs);
  SamplingParams p = Params(1.0);
  p.min_p = 0.3;  // threshold 0.12: keeps 0.4, 0.3, 0.15
  ExpectDistribution(Frequencies(logits, p, 21), Restrict(kProbs, {0, 1, 2}));
  p.min_p = 1.0;  // only the best
  ExpectDistribution(Frequencies(logits, p, 22), Restrict(kProbs, {0}));
}

TEST(SamplerTest, TopPAppliesToTheTopKRenormalisedDistribution) {
  // Top-k 3 keeps 0.3, 0.2 and 0.12; renormalised they are 0.48, 0.32, 0.19, so top-p 0.8 stops
  // after two tokens. (Measured on the unrenormalised distribution 0.3 + 0.2 + 0.12 would never
  // reach 0.8.) min-p 0.7 then drops 0.32 < 0.7 * 0.48.
  const std::vector<double> probs = {0.3, 0.2, 0.12, 0.1, 0.1, 0.1, 0.08};
  SamplingParams p = Params(1.0);
  p.top_k = 3;
  p.top_p = 0.8;
  ExpectDistribution(Frequencies(LogitsOf(probs), p, 23), Restrict(probs, {0, 1}));
  p.min_p = 0.7;
  ExpectDistribution(Frequencies(LogitsOf(probs), p, 25), Restrict(probs, {0}));
}

TEST(SamplerTest, TopKKeepsEveryTokenTiedWithTheKthAsTransformersDoes) {
  // transformers' TopKLogitsWarper (and vLLM) drop only logits below the k-th largest, so
  // tokens tied with it stay: top-k 2 over {0.4, 0.2, 0.2, 0.2} keeps all four.
  const std::vector<double> probs = {0.4, 0.2, 0.2, 0.2};
  SamplingParams p = Params(1.0);
  p.top_k = 2;
  ExpectDistribution(Frequencies(LogitsOf(probs), p, 29), probs);
}

// ---- penalties --------------------------------------------------------------------------------

int32_t Greedy(const std::vector<float>& logits, const SamplingParams& p,
               const std::vector<int32_t>& prompt, const std::vector<int32_t>& output) {
  Sampler sampler;
  SamplingParams greedy = p;
  greedy.temperature = 0.0;
  return sampler.Sample(logits, greedy, prompt, output, 0, 0).token;
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOnce) {
  SamplingParams p;
  p.repetition_penalty = 1.1;
  // 3.0 / 1.1 = 2.73 falls below 2.9: token 0 (seen in the prompt) loses.
  EXPECT_EQ(Greedy({3.0f, 2.9f, 0.0f}, p, {0}, {}), 1);
  EXPECT_EQ(Greedy({3.0f, 2.9f, 0.0f}, p, {}, {0}), 1) << "output tokens count too";
  EXPECT_EQ(Greedy({3.0f, 2.9f, 0.0f}, p, {2}, {}), 0) << "only seen tokens are penalised";
  // Once per token however often it was seen: 3.0 / 1.1 = 2.73 > 2.5 (1.1^3 would give 2.25).
  EXPECT_EQ(Greedy({3.0f, 2.5f}, p, {0, 0}, {0}), 0);
  // Negative logits are multiplied: -1.0 * 1.1 = -1.1 < -1.05 (dividing would raise it).
  EXPECT_EQ(Greedy({-1.0f, -1.05f, -4.0f}, p, {0}, {}), 1);
  p.repetition_penalty = 1.04;  // -1.04 > -1.05: still the best
  EXPECT_EQ(Greedy({-1.0f, -1.05f, -4.0f}, p, {0}, {}), 0);
}

TEST(SamplerTest, PresencePenaltyIsSubtractedOnceForOutputTokensOnly) {
  SamplingParams p;
  p.presence_penalty = 0.5;
  EXPECT_EQ(Greedy({3.0f, 2.6f}, p, {}, {0}), 1);        // 2.5 < 2.6
  EXPECT_EQ(Greedy({3.0f, 2.6f}, p, {}, {0, 0, 0}), 1);  // still 2.5, not 1.5
  EXPECT_EQ(Greedy({3.0f, 2.4f}, p, {}, {0, 0, 0}), 0);  // 2.5 > 2.4: subtracted once
  EXPECT_EQ(Greedy({3.0f, 2.6f}, p, {0, 0}, {}), 0) << "prompt tokens are not penalised";
  p.presence_penalty = -0.5;  // negative: encourages repetition
  EXPECT_EQ(Greedy({3.0f, 2.6f}, p, {}, {1}), 1);
}

TEST(SamplerTest, FrequencyPenaltyScalesWithTheOutputCount) {
  SamplingParams p;
  p.frequency_penalty = 0.2;
  EXPECT_EQ(Greedy({3.0f, 2.5f}, p, {}, {0, 0}), 0);     // 3.0 - 0.4 = 2.6 > 2.5
  EXPECT_EQ(Greedy({3.0f, 2.5f}, p, {}, {0, 0, 0}), 1);  // 3.0 - 0.6 = 2.4 < 2.5
  EXPECT_EQ(Greedy({3.0f, 2.5f}, p, {0, 0, 0, 0}, {}), 0) << "prompt tokens are not counted";
  p.presence_penalty = 0.15;  // both: 3.0 - 0.2 - 0.15 = 2.65 > 2.6; twice: 2.45 < 2.6
  EXPECT_EQ(Greedy({3.0f, 2.6f}, p, {}, {0}), 0);
  EXPECT_EQ(Greedy({3.0f, 2.6f}, p, {}, {0, 0}), 1);
}

TEST(SamplerTest, PenaltiesShapeTheSampledDistribution) {
  // Not just greedy: a frequency penalty of 1 on token 0 seen twice moves its logit by -2.
  const std::vector<float> logits = LogitsOf(kProbs);
  SamplingParams p = Params(1.0);
  p.frequency_penalty = 1.0;
  const std::vector<int32_t> output = {0, 0};
  Sampler sampler;
  std::vector<double> freq(logits.size(), 0.0);
  for (uint64_t step = 0; step < kDraws; ++step) {
    freq[sampler.Sample(logits, p, {}, output, 24, step).token] += 1.0 / kDraws;
  }
  std::vector<float> shifted = logits;
  shifted[0] -= 2.0f;
  ExpectDistribution(freq, Softmax(shifted));
}

TEST(SamplerTest, LogitBiasIsAddedBeforeThePenalties) {
  SamplingParams p;
  p.logit_bias = {{1, 0.2f}};
  EXPECT_EQ(Greedy({3.0f, 2.9f, 0.0f}, p, {}, {}), 1);  // 2.9 + 0.2 > 3.0
  p.logit_bias = {{0, -100.0f}};
  EXPECT_EQ(Greedy({3.0f, 2.9f, 0.0f}, p, {}, {}), 1) << "-100 bans the best token";
  p.logit_bias = {{2, 100.0f}};
  EXPECT_EQ(Greedy({3.0f, 2.9f, -50.0f}, p, {}, {}), 2) << "+100 forces a token";
  // Before a repetition penalty: (2.0 + 1.0) / 1.5 = 2.0 loses to 2.1 (the penalty first,
  // 2.0 / 1.5 + 1.0 = 2.33, would win) and beats 1.9.
  p.logit_bias = {{0, 1.0f}};
  p.repetition_penalty = 1.5;
  EXPECT_EQ(Greedy({2.0f, 2.5f}, p, {0}, {}), 1);
  EXPECT_EQ(Greedy({2.0f, 2.1f}, p, {0}, {}), 1);
  EXPECT_EQ(Greedy({2.0f, 1.9f}, p, {0}, {}), 0);
}

TEST(SamplerTest, LogitBiasShiftsTheSampledDistributionButNotTheLogprobs) {
  const std::vector<float> logits = LogitsOf(kProbs);
  SamplingParams p = Params(1.0);
  p.logit_bias = {{4, std::log(4.0f)}, {0, -100.0f}};  // token 4's odds x4, token 0 out
  Sampler sampler;
  std::vector<double> freq(logits.size(), 0.0);
  const std::vector<double> raw = Softmax(logits);
  for (uint64_t step = 0; step < kDraws; ++step) {
    const SampledToken t = sampler.Sample(logits, p, {}, {}, 26, step);
    freq[t.token] += 1.0 / kDraws;
    EXPECT_NEAR(t.logprob, std::log(raw[t.token]), 1e-5) << "log-probs are the raw model's";
  }
  std::vector<float> shifted = logits;
  shifted[4] += std::log(4.0f);
  std::vector<double> expected = Softmax(shifted);
  expected[0] = 0.0;  // exp(-100) of the rest: below one draw in 20000
  double z = 0.0;
  for (double x : expected) z += x;
  for (double& x : expected) x /= z;
  ExpectDistribution(freq, expected);
}

// ---- log-probs --------------------------------------------------------------------------------

std::vector<double> LogSoftmaxReference(const std::vector<float>& logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double z = 0.0;
  for (float x : logits) z += std::exp(x - max);
  std::vector<double> out;
  for (float x : logits) out.push_back(x - max - std::log(z));
  return out;
}

TEST(SamplerTest, LogprobsAreTheRawLogSoftmax) {
  const std::vector<float> logits = RandomLogits(300, 31, 8.0f);
  const std::vector<double> ref = LogSoftmaxReference(logits);
  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return ref[a] > ref[b]; });
  // Processing (temperature, top-k, penalties) changes what is drawn, never the reported
  // log-probs.
  SamplingParams p = Params(0.7);
  p.top_k = 20;
  p.repetition_penalty = 1.3;
  p.frequency_penalty = 0.5;
  p.num_logprobs = 5;
  Sampler sampler;
  for (uint64_t step = 0; step < 50; ++step) {
    const std::vector<int32_t> prompt = {order[0], 7}, output = {order[1]};
    const SampledToken s = sampler.Sample(logits, p, prompt, output, 5, step);
    EXPECT_NEAR(s.logprob, ref[s.token], 1e-6);
    ASSERT_EQ(s.top_logprobs.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(s.top_logprobs[i].token, order[i]) << "alternative " << i;
      EXPECT_NEAR(s.top_logprobs[i].logprob, ref[order[i]], 1e-6);
    }
  }
  // Greedy with logprobs 0: the chosen token's log-prob and no alternatives.
  p = Params(0.0);
  p.num_logprobs = 0;
  const SampledToken g = sampler.Sample(logits, p, {}, {}, 0, 0);
  EXPECT_EQ(g.token, order[0]);
  EXPECT_NEAR(g.logprob, ref[order[0]], 1e-6);
  EXPECT_TRUE(g.top_logprobs.empty());
  // num_logprobs 20 over a vocabulary of 3: all three.
  p.num_logprobs = 20;
  const std::vector<float> three = {0.0f, 1.0f, 0.5f};
  const SampledToken small = sampler.Sample(three, p, {}, {}, 0, 0);
  ASSERT_EQ(small.top_logprobs.size(), 3u);
  EXPECT_EQ(small.top_logprobs[0].token, 1);
  EXPECT_EQ(small.top_logprobs[1].token, 2);
  EXPECT_EQ(small.top_logprobs[2].token, 0);
}

TEST(SamplerTest, LogSoftmaxIsAccurateForWideRanges) {
  // Logits spanning 200 nats: exp of the smallest underflows in f32 but not the log-prob.
  const std::vector<float> logits = {100.0f, -100.0f, 0.0f, 99.0f};
  std::vector<float> out;
  LogSoftmax(logits, &out);
  const std::vector<double> ref = LogSoftmaxReference(logits);
  ASSERT_EQ(out.size(), 4u);
  for (size_t i = 0; i < out.size(); ++i)
    EXPECT_NEAR(out[i], ref[i], 1e-5 * std::fabs(ref[i]) + 1e-6);
}

// ---- validation -------------------------------------------------------------------------------

TEST(SamplingParamsTest, ValidateRejectsOutOfRangeValues) {
  auto code = [](auto edit) {
    SamplingParams p;
    edit(p);
    return p.Validate().code();
  };
  const StatusCode bad = StatusCode::kInvalidArgument;
  EXPECT_OK(SamplingParams().Validate());
  EXPECT_EQ(code([](SamplingParams& p) { p.temperature = -0.1; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.temperature = 100.5; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.temperature = NAN; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.temperature = INFINITY; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.top_k = -1; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.top_p = 0.0; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.top_p = 1.01; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.top_p = NAN; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.min_p = -0.01; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.min_p = 1.01; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.min_p = NAN; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.repetition_penalty = 0.0; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.repetition_penalty = 100.5; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.repetition_penalty = NAN; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.presence_penalty = 2.01; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.presence_penalty = -2.01; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.presence_penalty = NAN; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.frequency_penalty = 2.01; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.frequency_penalty = -2.01; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.frequency_penalty = NAN; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.num_logprobs = -2; }), bad);
  EXPECT_EQ(code([](SamplingParams& p) { p.num_logprobs = 21; }), bad);
}

TEST(SamplingParamsTest, ValidateAcceptsTheBoundaries) {
  auto ok = [](auto edit) {
    SamplingParams p;
    edit(p);
    return p.Validate();
  };
  EXPECT_OK(ok([](SamplingParams& p) { p.temperature = 0.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.temperature = 100.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.top_k = 0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.top_p = 1.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.top_p = 1e-9; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.min_p = 0.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.min_p = 1.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.repetition_penalty = 100.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.presence_penalty = -2.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.frequency_penalty = 2.0; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.num_logprobs = -1; }));
  EXPECT_OK(ok([](SamplingParams& p) { p.num_logprobs = 20; }));
}

TEST(StopConditionsTest, ValidateNeedsAtLeastOneToken) {
  StopConditions s;
  EXPECT_OK(s.Validate());
  s.max_tokens = 0;
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);
  s.max_tokens = -5;
  EXPECT_EQ(s.Validate().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tokenfab
