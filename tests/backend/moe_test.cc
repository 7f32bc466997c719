// MoeRoute and MoeExperts of every backend against double-precision references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "base/random.h"
#include "op_test_util.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::DeviceTensor;
using testing::Download;
using testing::DownloadI32;
using testing::RandomFloats;
using testing::RoundTo;
using testing::Upload;
using testing::UploadI32;

class MoeRouteTest : public ::testing::TestWithParam<std::string>, public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(GetParam());
    ASSERT_TRUE(ok());
  }
};

// Router logits with a clear order: a seeded permutation of 0.05-spaced values plus noise under
// 0.01, so the top-k set is unambiguous at any precision.
std::vector<float> DistinctLogits(int64_t tokens, int64_t experts, uint64_t seed) {
  std::vector<float> logits(tokens * experts);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<int> perm(experts);
    std::iota(perm.begin(), perm.end(), 0);
    for (int64_t i = experts - 1; i > 0; --i) {
      std::swap(perm[i], perm[HashCounter(seed, t, i) % (i + 1)]);
    }
    for (int64_t e = 0; e < experts; ++e) {
      logits[t * experts + e] =
          0.05f * float(perm[e] - experts / 2) + 0.005f * UniformSymmetricFloat(seed, 1000 + t, e);
    }
  }
  return logits;
}

TEST_P(MoeRouteTest, TopKOfTheSoftmaxWithAndWithoutRenormalisation) {
  for (auto [experts, k] : {std::pair{8, 2}, {8, 1}, {8, 8}, {60, 4}, {128, 8}, {5, 3}}) {
    for (bool normalize : {false, true}) {
      const int64_t tokens = 13;
      SCOPED_TRACE(::testing::Message()
                   << experts << " experts, top " << k << (normalize ? ", renormalised" : ""));
      const std::vector<float> logits = DistinctLogits(tokens, experts, experts * 10 + k);
      DeviceTensor ld = Upload(backend(), logits, DType::kF32, {tokens, experts});
      DeviceTensor ids = UploadI32(backend(), std::vector<int32_t>(tokens * k, -7), {tokens, k});
      DeviceTensor w = testing::Filled(backend(), DType::kF32, {tokens, k}, -7.0f);
      ASSERT_OK(ops().MoeRoute(ld.tensor, normalize, ids.tensor, w.tensor));
      const std::vector<int32_t> got_ids = DownloadI32(backend(), ids.tensor);
      const std::vector<float> got_w = Download(backend(), w.tensor);
      std::vector<double> ref_w(tokens * k);
      for (int64_t t = 0; t < tokens; ++t) {
        std::vector<double> p(experts);
        double z = 0.0;
        for (int e = 0; e < experts; ++e) z += (p[e] = std::exp(double(logits[t * experts + e])));
        for (double& x : p) x /= z;
        std::vector<int> order(experts);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
        double chosen = 0.0;
        for (int j = 0; j < k; ++j) chosen += p[order[j]];
        for (int j = 0; j < k; ++j) {
          EXPECT_EQ(got_ids[t * k + j], order[j]) << "token " << t << " slot " << j;
          ref_w[t * k + j] = normalize ? p[order[j]] / chosen : p[order[j]];
        }
      }
      testing::ExpectNear(got_w, ref_w, tol(), "routing weights");
    }
  }
}

TEST_P(MoeRouteTest, TiesGoToTheLowerExpertId) {
  // All equal: the first k experts, in id order, with weight 1/E (or 1/k renormalised).
  const int64_t experts = 6, k = 3;
  DeviceTensor ld = Upload(backend(), std::vector<float>(experts, 0.5f), DType::kF32, {1, experts});
  DeviceTensor ids = UploadI32(backend(), std::vector<int32_t>(k, -1), {1, k});
  DeviceTensor w = testing::Filled(backend(), DType::kF32, {1, k}, 0.0f);
  ASSERT_OK(ops().MoeRoute(ld.tensor, false, ids.tensor, w.tensor));
  EXPECT_EQ(DownloadI32(backend(), ids.tensor), (std::vector<int32_t>{0, 1, 2}));
  testing::ExpectNear(Download(backend(), w.tensor), {1.0 / 6, 1.0 / 6, 1.0 / 6}, tol(), "w");
  ASSERT_OK(ops().MoeRoute(ld.tensor, true, ids.tensor, w.tensor));
  testing::ExpectNear(Download(backend(), w.tensor), {1.0 / 3, 1.0 / 3, 1.0 / 3}, tol(), "w");
  // A tie between the 2nd and 3rd best: the lower id wins the last slot.
  DeviceTensor l2 =
      Upload(backend(), {0.0f, 2.0f, 1.0f, 3.0f, 1.0f, -1.0f}, DType::kF32, {1, experts});
  ASSERT_OK(ops().MoeRoute(l2.tensor, false, ids.tensor, w.tensor));
  EXPECT_EQ(DownloadI32(backend(), ids.tensor), (std::vector<int32_t>{3, 1, 2}));
}

INSTANTIATE_TEST_SUITE_P(Backends, MoeRouteTest, ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

// (backend, stored weight dtype)
using MoeExpertsParam = std::tuple<std::string, DType>;

class MoeExpertsTest : public ::testing::TestWithParam<MoeExpertsParam>,
                       public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(std::get<0>(GetParam()));
    ASSERT_TRUE(ok());
  }
};

TEST_P(MoeExpertsTest, WeightedSumOfRoutedExpertMlps) {
  const DType w_dtype = backend().WeightDType(std::get<1>(GetParam()));
  struct Shape {
    int64_t tokens, experts, k, hidden, inter;
  };
  for (const Shape& sh : {Shape{1, 8, 2, 32, 24}, Shape{5, 8, 2, 32, 24}, Shape{17, 4, 1, 17, 9},
                          Shape{40, 16, 4, 64, 33}, Shape{7, 3, 3, 8, 5}}) {
    SCOPED_TRACE(::testing::Message() << sh.tokens << " tokens, " << sh.experts << " experts, top "
                                      << sh.k << ", H " << sh.hidden << ", I " << sh.inter);
    const uint64_t seed = sh.tokens * 1000 + sh.hidden;
    const int64_t t = sh.tokens, e = sh.experts, k = sh.k, h = sh.hidden, in = sh.inter;
    const std::vector<float> x = RoundTo(act(), RandomFloats(t * h, seed, 1));
    const std::vector<float> gate_up = RoundTo(w_dtype, RandomFloats(e * 2 * in * h, seed, 2));
    const std::vector<float> down = RoundTo(w_dtype, RandomFloats(e * h * in, seed, 3));
    // Routes: distinct experts per token, skewed so that expert 0 gets most tokens and some
    // experts none; weights positive, not normalised.
    std::vector<int32_t> ids(t * k);
    std::vector<float> weights(t * k);
    for (int64_t i = 0; i < t; ++i) {
      std::vector<int32_t> pool(e);
      std::iota(pool.begin(), pool.end(), 0);
      for (int64_t j = 0; j < k; ++j) {
        const int64_t pick = (j == 0 && i % 3 != 0) ? 0 : HashCounter(seed, i, j) % (e - j);
        ids[i * k + j] = pool[pick];
        pool.erase(pool.begin() + pick);
        weights[i * k + j] = 0.1f + 0.9f * float(UniformDouble(seed, 5000 + i, j));
      }
    }
    DeviceTensor xd = Upload(backend(), x, act(), {t, h});
    DeviceTensor gd = Upload(backend(), gate_up, w_dtype, {e, 2 * in, h});
    DeviceTensor dd = Upload(backend(), down, w_dtype, {e, h, in});
    DeviceTensor id = UploadI32(backend(), ids, {t, k});
    DeviceTensor wd = Upload(backend(), weights, DType::kF32, {t, k});
    // The experts' weighted outputs are added into an f32 residual that already holds 0.25.
    DeviceTensor out = testing::Filled(backend(), DType::kF32, {t, h}, 0.25f);
    MoeArgs a;
    a.x = xd.tensor;
    a.expert_ids = id.tensor;
    a.expert_weights = wd.tensor;
    a.gate_up = gd.tensor;
    a.down = dd.tensor;
    a.residual = out.tensor;
    ASSERT_OK(ops().MoeExperts(a));

    std::vector<double> ref(t * h, 0.25), bound(t * h, 0.25);
    for (int64_t i = 0; i < t; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const int32_t ex = ids[i * k + j];
        const float* gu = gate_up.data() + ex * 2 * in * h;
        const float* dn = down.data() + ex * h * in;
        std::vector<double> act_v(in), act_abs(in);
        for (int64_t c = 0; c < in; ++c) {
          double g = 0.0, u = 0.0, ga = 0.0, ua = 0.0;
          for (int64_t z = 0; z < h; ++z) {
            g += double(gu[c * h + z]) * x[i * h + z];
            u += double(gu[(in + c) * h + z]) * x[i * h + z];
            ga += std::fabs(double(gu[c * h + z]) * x[i * h + z]);
            ua += std::fabs(double(gu[(in + c) * h + z]) * x[i * h + z]);
          }
          const double silu = g / (1.0 + std::exp(-g));
          act_v[c] = silu * u;
          // |d(silu(g) u)| <= (|u| * 1.1 * ga + |silu| * ua) for errors proportional to ga, ua.
          act_abs[c] = 1.1 * std::fabs(u) * ga + std::fabs(silu) * ua;
        }
        for (int64_t z = 0; z < h; ++z) {
          double sum = 0.0, abs_sum = 0.0;
          for (int64_t c = 0; c < in; ++c) {
            sum += double(dn[z * in + c]) * act_v[c];
            abs_sum += std::fabs(double(dn[z * in + c])) * (std::fabs(act_v[c]) + act_abs[c]);
          }
          ref[i * h + z] += weights[i * k + j] * sum;
          bound[i * h + z] += weights[i * k + j] * abs_sum;
        }
      }
    }
    testing::ExpectNearBounded(Download(backend(), out.tensor), ref, bound, tol(), "MoeExperts");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, MoeExpertsTest,
                         ::testing::Combine(::testing::ValuesIn(testing::BackendNames()),
                                            ::testing::Values(DType::kF32, DType::kBF16,
                                                              DType::kF16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  std::string(DTypeName(std::get<1>(info.param)));
                         });

}  // namespace
}  // namespace tokenfab
