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

// ref[0, H) += weight * down_e(silu(gate_e x) * up_e x) in double for one token's row x [H] and
// expert e of gate_up [E, 2I, H] / down [E, H, I]; bound[0, H) += the magnitude its error is
// measured against: |d(silu(g) u)| <= |u| * 1.1 * |g terms| + |silu(g)| * |u terms|.
void AddExpertReference(const std::vector<double>& x, const std::vector<float>& gate_up,
                        const std::vector<float>& down, int64_t e, int64_t in, double weight,
                        double* ref, double* bound) {
  const int64_t h = static_cast<int64_t>(x.size());
  const float* gu = gate_up.data() + e * 2 * in * h;
  const float* dn = down.data() + e * h * in;
  std::vector<double> act_v(in), act_abs(in);
  for (int64_t c = 0; c < in; ++c) {
    double g = 0.0, u = 0.0, ga = 0.0, ua = 0.0;
    for (int64_t z = 0; z < h; ++z) {
      g += double(gu[c * h + z]) * x[z];
      u += double(gu[(in + c) * h + z]) * x[z];
      ga += std::fabs(double(gu[c * h + z]) * x[z]);
      ua += std::fabs(double(gu[(in + c) * h + z]) * x[z]);
    }
    const double silu = g / (1.0 + std::exp(-g));
    act_v[c] = silu * u;
    act_abs[c] = 1.1 * std::fabs(u) * ga + std::fabs(silu) * ua;
  }
  for (int64_t z = 0; z < h; ++z) {
    double sum = 0.0, abs_sum = 0.0;
    for (int64_t c = 0; c < in; ++c) {
      sum += double(dn[z * in + c]) * act_v[c];
      abs_sum += std::fabs(double(dn[z * in + c])) * (std::fabs(act_v[c]) + act_abs[c]);
    }
    ref[z] += weight * sum;
    bound[z] += weight * abs_sum;
  }
}

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
  // The last two reach the CUDA tensor-core path with several tiles of one expert (expert 0
  // gets two thirds of the tokens), K not a multiple of its 32-wide steps and partial strips of
  // 64 output rows; f32 inputs are rounded to bf16 on that path.
  for (const Shape& sh : {Shape{1, 8, 2, 32, 24}, Shape{5, 8, 2, 32, 24}, Shape{17, 4, 1, 17, 9},
                          Shape{40, 16, 4, 64, 33}, Shape{7, 3, 3, 8, 5}, Shape{300, 8, 2, 40, 24},
                          Shape{70, 6, 3, 136, 72}})
  for (const DType x_dtype : {act(), DType::kF32}) {
    SCOPED_TRACE(::testing::Message() << sh.tokens << " tokens, " << sh.experts << " experts, top "
                                      << sh.k << ", H " << sh.hidden << ", I " << sh.inter
                                      << ", x " << DTypeName(x_dtype));
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
    DeviceTensor xd = Upload(backend(), x, x_dtype, {t, h});
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
      const std::vector<double> xi(x.begin() + i * h, x.begin() + (i + 1) * h);
      for (int64_t j = 0; j < k; ++j) {
        AddExpertReference(xi, gate_up, down, ids[i * k + j], in, weights[i * k + j],
                           ref.data() + i * h, bound.data() + i * h);
      }
    }
    testing::ExpectNearBounded(Download(backend(), out.tensor), ref, bound, tol(), "MoeExperts");
  }
}

// MoeBlock: the norm, the router and the routed experts in one op (a GPU may fuse them for one
// or two tokens; five tokens take the unfused path). Router weights are drawn until every token's
// top-k is decided by a clear margin, so the choice of experts is exact on every backend.
TEST_P(MoeExpertsTest, MoeBlockNormsRoutesAndAddsTheExperts) {
  const DType w_dtype = backend().WeightDType(std::get<1>(GetParam()));
  struct Shape {
    int64_t tokens, experts, k, hidden, inter;
    bool normalize;
  };
  for (const Shape& sh : {Shape{1, 8, 2, 64, 32, true}, Shape{2, 16, 4, 128, 48, false},
                          Shape{2, 128, 8, 64, 16, true}, Shape{1, 6, 3, 24, 8, false},
                          Shape{5, 8, 2, 32, 24, true}, Shape{1, 4, 1, 16, 9, true},
                          // Past 128 experts: the CUDA router's wider logit layouts.
                          Shape{1, 200, 8, 64, 16, true}, Shape{2, 600, 4, 32, 8, false}}) {
    SCOPED_TRACE(::testing::Message() << sh.tokens << " tokens, " << sh.experts << " experts, top "
                                      << sh.k << ", H " << sh.hidden << ", I " << sh.inter);
    const int64_t t = sh.tokens, e = sh.experts, k = sh.k, h = sh.hidden, in = sh.inter;
    const float eps = 1e-6f;
    uint64_t seed = t * 1000 + e * 10 + h;
    const std::vector<float> residual = RandomFloats(t * h, seed, 1, 2.0f);
    const std::vector<float> norm = RandomFloats(h, seed, 2, 1.5f);
    std::vector<std::vector<double>> x_n(t, std::vector<double>(h));
    for (int64_t i = 0; i < t; ++i) {
      double sq = 0.0;
      for (int64_t z = 0; z < h; ++z) sq += double(residual[i * h + z]) * residual[i * h + z];
      const double inv = 1.0 / std::sqrt(sq / h + eps);
      for (int64_t z = 0; z < h; ++z) x_n[i][z] = norm[z] * (residual[i * h + z] * inv);
    }
    std::vector<float> router;
    std::vector<std::vector<double>> probs(t, std::vector<double>(e));
    std::vector<std::vector<int>> order(t, std::vector<int>(e));
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 50) << "no router draw with clear top-k margins";
      router = RoundTo(w_dtype, RandomFloats(e * h, seed + 100 * attempt, 3, 0.5f));
      double worst_margin = 1.0;
      for (int64_t i = 0; i < t; ++i) {
        double z = 0.0;
        for (int64_t ex = 0; ex < e; ++ex) {
          double logit = 0.0;
          for (int64_t c = 0; c < h; ++c) logit += x_n[i][c] * router[ex * h + c];
          z += (probs[i][ex] = std::exp(logit));
        }
        for (double& p : probs[i]) p /= z;
        std::iota(order[i].begin(), order[i].end(), 0);
        std::stable_sort(order[i].begin(), order[i].end(),
                         [&](int a, int b) { return probs[i][a] > probs[i][b]; });
        if (k < e) worst_margin = std::min(worst_margin, probs[i][order[i][k - 1]] -
                                                             probs[i][order[i][k]]);
      }
      if (worst_margin > 1e-3) break;
    }
    const std::vector<float> gate_up = RoundTo(w_dtype, RandomFloats(e * 2 * in * h, seed, 4));
    const std::vector<float> down = RoundTo(w_dtype, RandomFloats(e * h * in, seed, 5));
    DeviceTensor rd = Upload(backend(), residual, DType::kF32, {t, h});
    DeviceTensor nd = Upload(backend(), norm, DType::kF32, {h});
    DeviceTensor router_d = Upload(backend(), router, w_dtype, {e, h});
    DeviceTensor gd = Upload(backend(), gate_up, w_dtype, {e, 2 * in, h});
    DeviceTensor dd = Upload(backend(), down, w_dtype, {e, h, in});
    DeviceTensor normed = testing::Filled(backend(), DType::kF32, {t, h}, 7e3f);
    DeviceTensor logits = testing::Filled(backend(), DType::kF32, {t, e}, 7e3f);
    DeviceTensor ids = UploadI32(backend(), std::vector<int32_t>(t * k, -7), {t, k});
    DeviceTensor weights = testing::Filled(backend(), DType::kF32, {t, k}, -7.0f);
    MoeBlockArgs a;
    a.residual = rd.tensor;
    a.norm_weight = nd.tensor;
    a.norm_eps = eps;
    a.router = router_d.tensor;
    a.normalize = sh.normalize;
    a.gate_up = gd.tensor;
    a.down = dd.tensor;
    a.normed = normed.tensor;
    a.logits = logits.tensor;
    a.expert_ids = ids.tensor;
    a.expert_weights = weights.tensor;
    ASSERT_OK(ops().MoeBlock(a));

    // The intermediates first: the routing exactly, the weights, logits and norm closely.
    const std::vector<int32_t> got_ids = DownloadI32(backend(), ids.tensor);
    std::vector<double> ref_w(t * k), ref_logits(t * e), ref_normed(t * h);
    for (int64_t i = 0; i < t; ++i) {
      double chosen = 0.0;
      for (int64_t j = 0; j < k; ++j) chosen += probs[i][order[i][j]];
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_EQ(got_ids[i * k + j], order[i][j]) << "token " << i << " slot " << j;
        const double p = probs[i][order[i][j]];
        ref_w[i * k + j] = sh.normalize ? p / chosen : p;
      }
      for (int64_t ex = 0; ex < e; ++ex) {
        for (int64_t c = 0; c < h; ++c) ref_logits[i * e + ex] += x_n[i][c] * router[ex * h + c];
      }
      for (int64_t z = 0; z < h; ++z) ref_normed[i * h + z] = x_n[i][z];
    }
    testing::ExpectNear(Download(backend(), weights.tensor), ref_w, tol(), "routing weights");
    testing::ExpectNear(Download(backend(), logits.tensor), ref_logits, tol(), "router logits");
    testing::ExpectNear(Download(backend(), normed.tensor), ref_normed, tol(), "normed rows");

    std::vector<double> ref(t * h), bound(t * h);
    for (int64_t i = 0; i < t; ++i) {
      double chosen = 0.0;
      for (int64_t j = 0; j < k; ++j) chosen += probs[i][order[i][j]];
      for (int64_t z = 0; z < h; ++z) {
        ref[i * h + z] = residual[i * h + z];
        bound[i * h + z] = std::fabs(residual[i * h + z]);
      }
      for (int64_t j = 0; j < k; ++j) {
        const int ex = order[i][j];
        const double wk = sh.normalize ? probs[i][ex] / chosen : probs[i][ex];
        AddExpertReference(x_n[i], gate_up, down, ex, in, wk, ref.data() + i * h,
                           bound.data() + i * h);
      }
    }
    testing::ExpectNearBounded(Download(backend(), rd.tensor), ref, bound, tol(), "MoeBlock");
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
