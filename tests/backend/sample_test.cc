// The Sample op of every backend against the host reference (backend/sample_row.h): greedy and
// every filter, seeded. The CPU backend must agree exactly; a GPU sums its probabilities in
// another order, so a draw that lands within rounding of a boundary may pick the neighbour:
// it must agree on at least 99% of the draws and on every greedy row.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backend/device_sampling.h"
#include "backend/sample_row.h"
#include "op_test_util.h"
#include "test_util.h"

namespace tokenfab {
namespace {

class SampleTest : public ::testing::TestWithParam<std::string>, public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(GetParam());
    ASSERT_TRUE(ok());
  }

  // Samples `params.size()` rows of `vocab` logits on the backend; returns agreement with the
  // reference as a fraction, and checks log-probs and greedy rows exactly. The logits and the
  // chosen tokens are left in logits_ and tokens_.
  double Run(int64_t vocab, const std::vector<DeviceSamplingParams>& params, uint64_t seed) {
    const int64_t rows = static_cast<int64_t>(params.size());
    return RunOn(vocab, params, testing::RandomFloats(rows * vocab, seed, 1, 6.0f));
  }

  // The same on given logits, [params.size(), vocab].
  double RunOn(int64_t vocab, const std::vector<DeviceSamplingParams>& params,
               std::vector<float> logits_in) {
    const int64_t rows = static_cast<int64_t>(params.size());
    logits_ = std::move(logits_in);
    const std::vector<float>& logits = logits_;
    testing::DeviceTensor ld = testing::Upload(backend(), logits, DType::kF32, {rows, vocab});
    std::vector<uint8_t> raw(rows * sizeof(DeviceSamplingParams));
    std::memcpy(raw.data(), params.data(), raw.size());
    DeviceBuffer pbuf = std::move(backend().Allocate(raw.size())).value();
    EXPECT_OK(backend().CopyToDevice(pbuf.data(), raw.data(), raw.size()));
    const Tensor pt(pbuf.data(), DType::kU8, {static_cast<int64_t>(raw.size())});
    testing::DeviceTensor tokens = testing::Filled(backend(), DType::kF32, {rows}, -1.0f);
    tokens.tensor.dtype = DType::kI32;
    testing::DeviceTensor logprobs = testing::Filled(backend(), DType::kF32, {rows}, 1.0f);
    EXPECT_OK(ops().Sample(ld.tensor, pt, tokens.tensor, logprobs.tensor));
    tokens_ = testing::DownloadI32(backend(), tokens.tensor);
    const std::vector<int32_t>& got = tokens_;
    const std::vector<float> got_lp = testing::Download(backend(), logprobs.tensor);
    int agree = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const std::span<const float> row(logits.data() + r * vocab, vocab);
      const SampledRow want = SampleRow(row, row, params[r]);
      EXPECT_TRUE(got[r] >= 0 && got[r] < vocab) << "row " << r;
      if (got[r] < 0 || got[r] >= vocab) continue;
      if (got[r] == want.token) ++agree;
      if (params[r].temperature == 0.0f) {
        EXPECT_EQ(got[r], want.token) << "greedy row " << r;
      }
      // The log-prob belongs to whatever token was chosen.
      double lse = 0.0, mx = -1e30;
      for (float v : row) mx = std::max<double>(mx, v);
      for (float v : row) lse += std::exp(v - mx);
      lse = mx + std::log(lse);
      EXPECT_NEAR(got_lp[r], row[got[r]] - lse, 1e-4) << "row " << r;
    }
    return static_cast<double>(agree) / rows;
  }

  std::vector<float> logits_;
  std::vector<int32_t> tokens_;
};

TEST_P(SampleTest, GreedyIsTheFirstMaximum) {
  std::vector<DeviceSamplingParams> params(17);  // temperature 0
  const int64_t vocab = 1000;
  EXPECT_EQ(Run(vocab, params, 3), 1.0);
  for (size_t r = 0; r < params.size(); ++r) {
    const float* row = logits_.data() + r * vocab;
    EXPECT_EQ(tokens_[r], std::max_element(row, row + vocab) - row);
  }
}

TEST_P(SampleTest, FiltersAndSeedsMatchTheReference) {
  std::vector<DeviceSamplingParams> params;
  for (int i = 0; i < 400; ++i) {
    DeviceSamplingParams p;
    p.temperature = 0.5f + 0.25f * (i % 4);
    p.top_k = (i % 5 == 0) ? 0 : 1 + (i * 7) % 50;
    p.top_p = (i % 3 == 0) ? 1.0f : 0.5f + 0.1f * (i % 5);
    p.min_p = (i % 7 == 0) ? 0.05f : 0.0f;
    p.seed = 1000 + i;
    p.step = i % 11;
    params.push_back(p);
  }
  const double agreement = Run(3001, params, 5);
  if (backend_name() == "cpu") {
    EXPECT_EQ(agreement, 1.0);
  } else {
    EXPECT_GE(agreement, 0.99);
  }
}

TEST_P(SampleTest, FiltersRestrictTheSupport) {
  // top_k = 3 at a high temperature: every draw is among the 3 largest logits.
  std::vector<DeviceSamplingParams> params(200);
  for (int i = 0; i < 200; ++i) {
    params[i].temperature = 5.0f;
    params[i].top_k = 3;
    params[i].seed = i;
  }
  const int64_t vocab = 500;
  EXPECT_GE(Run(vocab, params, 9), backend_name() == "cpu" ? 1.0 : 0.99);
  std::vector<int> seen(3, 0);
  for (size_t r = 0; r < params.size(); ++r) {
    std::vector<float> row(logits_.begin() + r * vocab, logits_.begin() + (r + 1) * vocab);
    std::vector<float> sorted = row;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    EXPECT_GE(row[tokens_[r]], sorted[2]) << "row " << r << " drew outside the top 3";
    for (int i = 0; i < 3; ++i) seen[i] += row[tokens_[r]] == sorted[i];
  }
  // At temperature 5 the three are close to equally likely: each must come up.
  for (int i = 0; i < 3; ++i) EXPECT_GT(seen[i], 20) << "rank " << i;
}

// The CUDA kernel finds the thresholds by a radix select over 8-bit digits of each value's
// bits; these place the thresholds where the digits are hard: ties at the k-th value, a nucleus
// of one token, a flat row, a threshold deep in the low digits, and vocabularies that are not
// multiples of 4, 256 or 1024 (rows that do not start 16-byte aligned).

// The k-th largest value of a row.
float KthLargest(const float* row, int64_t vocab, int k) {
  std::vector<float> sorted(row, row + vocab);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
  return sorted[k - 1];
}

TEST_P(SampleTest, TopKWithTiesAtTheThreshold) {
  const int64_t vocab = 1000;
  std::vector<DeviceSamplingParams> params(120);
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].temperature = 1.0f + 0.5f * (i % 3);
    params[i].top_k = 2 + static_cast<int32_t>(i * 13 % 97);
    params[i].seed = 50 + i;
  }
  // Half-integers in [-6, 6]: about 40 tokens share each value, so the k-th is tied.
  std::vector<float> logits = testing::RandomFloats(params.size() * vocab, 11, 1, 6.0f);
  for (float& x : logits) x = std::round(2.0f * x) / 2.0f;
  EXPECT_GE(RunOn(vocab, params, std::move(logits)), backend_name() == "cpu" ? 1.0 : 0.99);
  for (size_t r = 0; r < params.size(); ++r) {
    const float* row = logits_.data() + r * vocab;
    EXPECT_GE(row[tokens_[r]], KthLargest(row, vocab, params[r].top_k)) << "row " << r;
  }
}

TEST_P(SampleTest, TopPWithANucleusOfOneToken) {
  const int64_t vocab = 4099;
  std::vector<DeviceSamplingParams> params(64);
  std::vector<float> logits = testing::RandomFloats(params.size() * vocab, 13, 1, 6.0f);
  std::vector<int32_t> spike(params.size());
  for (size_t r = 0; r < params.size(); ++r) {
    params[r].temperature = 1.0f;
    params[r].top_p = (r % 3 == 0) ? 0.5f : 0.9f;
    params[r].top_k = (r % 4 == 0) ? 100 : 0;
    params[r].seed = 70 + r;
    spike[r] = static_cast<int32_t>((r * 977 + 5) % vocab);
    logits[r * vocab + spike[r]] = 30.0f;  // holds all but e^-24 * vocab of the mass
  }
  EXPECT_EQ(RunOn(vocab, params, std::move(logits)), 1.0);
  for (size_t r = 0; r < params.size(); ++r) EXPECT_EQ(tokens_[r], spike[r]) << "row " << r;
}

TEST_P(SampleTest, TinyTopPKeepsTheMaximum) {
  const int64_t vocab = 3001;
  std::vector<DeviceSamplingParams> params(40);
  for (size_t r = 0; r < params.size(); ++r) {
    params[r].temperature = 0.7f;
    params[r].top_p = 1e-6f;
    params[r].seed = 90 + r;
  }
  EXPECT_EQ(Run(vocab, params, 17), 1.0);
  for (size_t r = 0; r < params.size(); ++r) {
    const float* row = logits_.data() + r * vocab;
    EXPECT_EQ(tokens_[r], std::max_element(row, row + vocab) - row) << "row " << r;
  }
}

TEST_P(SampleTest, FlatRowOverAFullVocabulary) {
  // Every value ties: top-k and top-p keep the whole row, and the draw is uniform over it.
  const int64_t vocab = 128256;
  std::vector<DeviceSamplingParams> params(12);
  for (size_t r = 0; r < params.size(); ++r) {
    params[r].temperature = 1.0f;
    params[r].top_p = (r % 2 == 0) ? 0.5f : 0.95f;
    params[r].top_k = (r % 3 == 0) ? 1000 : 0;
    params[r].seed = 110 + r;
  }
  // exp(0) = 1 exactly, so every backend's sums are exact and the draws agree.
  EXPECT_EQ(RunOn(vocab, params, std::vector<float>(params.size() * vocab, 0.0f)), 1.0);
}

TEST_P(SampleTest, ThresholdsInTheLowDigitsOfAnOddVocabulary) {
  // Values within 1e-3 of each other share their top digits: the thresholds are told apart only
  // by the low bits. 128257 is odd, so most rows start off 16-byte alignment.
  const int64_t vocab = 128257;
  std::vector<DeviceSamplingParams> params(16);
  for (size_t r = 0; r < params.size(); ++r) {
    params[r].temperature = 1.0f;
    params[r].top_p = (r % 2 == 0) ? 0.5f : 0.9f;
    params[r].top_k = (r % 4 == 1) ? 20000 + static_cast<int32_t>(r) : 0;
    params[r].seed = 130 + r;
  }
  const std::vector<float> logits = testing::RandomFloats(params.size() * vocab, 19, 1, 1e-3f);
  const double agreement = RunOn(vocab, params, logits);
  // A GPU computes the nucleus mass from other exponentials; on a row this flat that moves the
  // threshold by a token now and then, and the draw with it: check the support instead.
  EXPECT_GE(agreement, backend_name() == "cpu" ? 1.0 : 0.75);
  for (size_t r = 0; r < params.size(); ++r) {
    const float* row = logits_.data() + r * vocab;
    if (params[r].top_k > 0) {
      EXPECT_GE(row[tokens_[r]], KthLargest(row, vocab, params[r].top_k)) << "row " << r;
    }
    // The nucleus holds about top_p of the tokens; allow a little for the exponentials' spread.
    const int64_t above =
        std::count_if(row, row + vocab, [&](float x) { return x > row[tokens_[r]]; });
    EXPECT_LE(above, static_cast<int64_t>((params[r].top_p + 0.01) * vocab)) << "row " << r;
  }
}

TEST_P(SampleTest, AwkwardVocabularies) {
  for (const int64_t vocab : {17, 97, 255, 257, 1023, 1025}) {
    std::vector<DeviceSamplingParams> params;
    for (int i = 0; i < 60; ++i) {
      DeviceSamplingParams p;
      p.temperature = 0.6f + 0.3f * (i % 3);
      p.top_k = (i % 4 == 0) ? 0 : 1 + static_cast<int32_t>((i * 11) % vocab);
      p.top_p = (i % 3 == 0) ? 1.0f : 0.6f + 0.15f * (i % 3);
      p.min_p = (i % 5 == 0) ? 0.02f : 0.0f;
      p.seed = 150 + i;
      p.step = i % 7;
      params.push_back(p);
    }
    const double agreement = Run(vocab, params, 21 + vocab);
    EXPECT_GE(agreement, backend_name() == "cpu" ? 1.0 : 0.95) << "vocab " << vocab;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SampleTest, ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenfab
