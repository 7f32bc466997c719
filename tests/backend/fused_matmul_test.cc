// The fused block projections of every backend against double-precision references:
// NormMatMul (RmsNorm of an f32 residual, rounded to act, times w^T, plus bias) and MatMulAdd
// (x w^T plus bias added into an f32 residual; gated: x = silu(gate) * up rounded to act).
// Rows 1..16 take a GPU's fused skinny kernel, more rows its unfused GEMM path: both are run.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "op_test_util.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::DeviceTensor;
using testing::Download;
using testing::RandomFloats;
using testing::RoundTo;
using testing::Upload;

struct Shape {
  int64_t m, n, k;
};
constexpr Shape kShapes[] = {{1, 37, 64}, {3, 130, 264}, {16, 64, 128},
                             {17, 40, 96}, {40, 33, 64}, {2, 16, 8}};

class FusedMatMulTest : public ::testing::TestWithParam<std::string>,
                        public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(GetParam());
    ASSERT_TRUE(ok());
  }
  DType wdt() { return backend().WeightDType(DType::kBF16); }
};

TEST_P(FusedMatMulTest, NormMatMulIsRmsNormThenMatMul) {
  for (const Shape& sh : kShapes) {
    for (bool with_bias : {false, true}) {
      for (DType out_dtype : {act(), DType::kF32}) {
        SCOPED_TRACE(::testing::Message() << sh.m << "x" << sh.n << "x" << sh.k
                                          << (with_bias ? " +bias" : "") << " out "
                                          << DTypeName(out_dtype));
        const float eps = 1e-5f;
        const uint64_t seed = sh.m * 10000 + sh.n * 100 + sh.k;
        const std::vector<float> x = RandomFloats(sh.m * sh.k, seed, 1, 3.0f);
        const std::vector<float> g = RandomFloats(sh.k, seed, 2, 1.5f);
        const std::vector<float> w = RoundTo(wdt(), RandomFloats(sh.n * sh.k, seed, 3));
        const std::vector<float> bias = RandomFloats(sh.n, seed, 4, 2.0f);
        DeviceTensor xd = Upload(backend(), x, DType::kF32, {sh.m, sh.k});
        DeviceTensor gd = Upload(backend(), g, DType::kF32, {sh.k});
        DeviceTensor wd = Upload(backend(), w, wdt(), {sh.n, sh.k});
        DeviceTensor bd = Upload(backend(), bias, DType::kF32, {sh.n});
        DeviceTensor out = testing::Filled(backend(), out_dtype, {sh.m, sh.n}, 7e3f);
        ASSERT_OK(ops().NormMatMul(xd.tensor, gd.tensor, eps, wd.tensor,
                                   with_bias ? bd.tensor : Tensor(), out.tensor));
        std::vector<double> ref(sh.m * sh.n), bound(sh.m * sh.n);
        for (int64_t r = 0; r < sh.m; ++r) {
          double sq = 0.0;
          for (int64_t i = 0; i < sh.k; ++i) sq += double(x[r * sh.k + i]) * x[r * sh.k + i];
          const double inv = 1.0 / std::sqrt(sq / sh.k + eps);
          std::vector<float> normed(sh.k);
          for (int64_t i = 0; i < sh.k; ++i) normed[i] = float(g[i] * (x[r * sh.k + i] * inv));
          normed = RoundTo(act(), normed);  // what an unfused RmsNorm would have stored
          for (int64_t c = 0; c < sh.n; ++c) {
            double sum = with_bias ? bias[c] : 0.0, abs_sum = with_bias ? std::fabs(bias[c]) : 0.0;
            for (int64_t i = 0; i < sh.k; ++i) {
              const double term = double(normed[i]) * w[c * sh.k + i];
              sum += term;
              abs_sum += std::fabs(term) + std::fabs(w[c * sh.k + i] * g[i]) * 1e-2;
            }
            ref[r * sh.n + c] = sum;
            bound[r * sh.n + c] = abs_sum;
          }
        }
        testing::ExpectNearBounded(Download(backend(), out.tensor), ref, bound, tol(),
                                   "NormMatMul");
      }
    }
  }
}

TEST_P(FusedMatMulTest, MatMulAddAddsIntoTheResidual) {
  for (const Shape& sh : kShapes) {
    for (bool gated : {false, true}) {
      SCOPED_TRACE(::testing::Message() << sh.m << "x" << sh.n << "x" << sh.k
                                        << (gated ? " gated" : ""));
      const uint64_t seed = sh.m * 10000 + sh.n * 100 + sh.k + (gated ? 7 : 0);
      const int64_t width = gated ? 2 * sh.k : sh.k;
      // Gates up to +-8 reach both tails of the sigmoid.
      const std::vector<float> x = RoundTo(act(), RandomFloats(sh.m * width, seed, 1, 8.0f));
      const std::vector<float> w = RoundTo(wdt(), RandomFloats(sh.n * sh.k, seed, 2));
      const std::vector<float> bias = RandomFloats(sh.n, seed, 3, 2.0f);
      const std::vector<float> residual = RandomFloats(sh.m * sh.n, seed, 4, 5.0f);
      DeviceTensor xd = Upload(backend(), x, act(), {sh.m, width});
      DeviceTensor wd = Upload(backend(), w, wdt(), {sh.n, sh.k});
      DeviceTensor bd = Upload(backend(), bias, DType::kF32, {sh.n});
      DeviceTensor rd = Upload(backend(), residual, DType::kF32, {sh.m, sh.n});
      ASSERT_OK(ops().MatMulAdd(xd.tensor, gated, wd.tensor, bd.tensor, rd.tensor));
      std::vector<double> ref(sh.m * sh.n), bound(sh.m * sh.n);
      for (int64_t r = 0; r < sh.m; ++r) {
        std::vector<float> in(sh.k);
        for (int64_t i = 0; i < sh.k; ++i) {
          if (gated) {
            const double gv = x[r * width + i], uv = x[r * width + sh.k + i];
            in[i] = float(gv / (1.0 + std::exp(-gv)) * uv);
          } else {
            in[i] = x[r * width + i];
          }
        }
        if (gated) in = RoundTo(act(), in);
        for (int64_t c = 0; c < sh.n; ++c) {
          double sum = residual[r * sh.n + c] + bias[c];
          double abs_sum = std::fabs(residual[r * sh.n + c]) + std::fabs(bias[c]);
          for (int64_t i = 0; i < sh.k; ++i) {
            const double term = double(in[i]) * w[c * sh.k + i];
            sum += term;
            abs_sum += std::fabs(term) * (gated ? 1.02 : 1.0);
          }
          ref[r * sh.n + c] = sum;
          bound[r * sh.n + c] = abs_sum;
        }
      }
      testing::ExpectNearBounded(Download(backend(), rd.tensor), ref, bound, tol(), "MatMulAdd");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, FusedMatMulTest, ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenfab
