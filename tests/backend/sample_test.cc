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
    logits_ = testing::RandomFloats(rows * vocab, seed, 1, 6.0f);
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

INSTANTIATE_TEST_SUITE_P(Backends, SampleTest, ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenfab
