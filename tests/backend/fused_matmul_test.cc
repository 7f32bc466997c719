// The fused block projections of every backend against double-precision references:
// NormMatMul (RmsNorm of an f32 residual, rounded to act, times w^T, plus bias; gated: then
// silu(gate) * up) and MatMulAdd (x w^T plus bias added into an f32 residual). Rows 1..2 take a
// GPU's skinny kernel, more rows its GEMM path: both are run.
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
// 5 then 6 rows, and 20 then 24 over a deep k (where split-k algorithms are candidates): on
// the GPU the first of each pair times cuBLASLt's candidates for their row bucket, the second
// reuses that choice.
constexpr Shape kShapes[] = {{1, 37, 64},  {3, 130, 264}, {5, 130, 264},  {6, 130, 264},
                             {16, 64, 128}, {17, 40, 96},  {20, 64, 4096}, {24, 64, 4096},
                             {40, 33, 64},  {2, 16, 8}};

// y = RmsNorm(x, g) w^T (+ bias) in double from the normalised rows rounded to act, as an
// unfused RmsNorm would have stored them, with each element's error bound (the magnitude of
// its terms, plus the normalisation's rounding).
void NormProductReference(DType act, const std::vector<float>& x, const std::vector<float>& g,
                          float eps, const std::vector<float>& w, const std::vector<float>* bias,
                          int64_t m, int64_t n, int64_t k, std::vector<double>* ref,
                          std::vector<double>* bound) {
  ref->assign(m * n, 0.0);
  bound->assign(m * n, 0.0);
  for (int64_t r = 0; r < m; ++r) {
    double sq = 0.0;
    for (int64_t i = 0; i < k; ++i) sq += double(x[r * k + i]) * x[r * k + i];
    const double inv = 1.0 / std::sqrt(sq / k + eps);
    std::vector<float> normed(k);
    for (int64_t i = 0; i < k; ++i) normed[i] = float(g[i] * (x[r * k + i] * inv));
    normed = RoundTo(act, normed);
    for (int64_t c = 0; c < n; ++c) {
      double sum = bias ? (*bias)[c] : 0.0, abs_sum = bias ? std::fabs((*bias)[c]) : 0.0;
      for (int64_t i = 0; i < k; ++i) {
        const double term = double(normed[i]) * w[c * k + i];
        sum += term;
        abs_sum += std::fabs(term) + std::fabs(w[c * k + i] * g[i]) * 1e-2;
      }
      (*ref)[r * n + c] = sum;
      (*bound)[r * n + c] = abs_sum;
    }
  }
}

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
                                   with_bias ? bd.tensor : Tensor(), /*gated=*/false, out.tensor));
        std::vector<double> ref, bound;
        NormProductReference(act(), x, g, eps, w, with_bias ? &bias : nullptr, sh.m, sh.n, sh.k,
                             &ref, &bound);
        testing::ExpectNearBounded(Download(backend(), out.tensor), ref, bound, tol(),
                                   "NormMatMul");
      }
    }
  }
}

TEST_P(FusedMatMulTest, GatedNormMatMulIsSiluOfGateTimesUp) {
  std::vector<Shape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.push_back({1100, 6, 16});  // more rows than a GPU's gated product takes at once
  for (const Shape& sh : shapes) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(::testing::Message() << sh.m << "x" << sh.n << "x" << sh.k
                                        << (with_bias ? " +bias" : ""));
      // sh.n outputs from 2 * sh.n weight rows: the gate's, then the up projection's.
      const int64_t rows = 2 * sh.n;
      const float eps = 1e-6f;
      const uint64_t seed = sh.m * 10000 + sh.n * 100 + sh.k + 7;
      const std::vector<float> x = RandomFloats(sh.m * sh.k, seed, 1, 3.0f);
      const std::vector<float> g = RandomFloats(sh.k, seed, 2, 1.5f);
      // Weights up to +-0.5 give products of a few units: both tails of the sigmoid.
      const std::vector<float> w = RoundTo(wdt(), RandomFloats(rows * sh.k, seed, 3, 0.5f));
      const std::vector<float> bias = RandomFloats(rows, seed, 4, 2.0f);
      DeviceTensor xd = Upload(backend(), x, DType::kF32, {sh.m, sh.k});
      DeviceTensor gd = Upload(backend(), g, DType::kF32, {sh.k});
      DeviceTensor wd = Upload(backend(), w, wdt(), {rows, sh.k});
      DeviceTensor bd = Upload(backend(), bias, DType::kF32, {rows});
      DeviceTensor out = testing::Filled(backend(), act(), {sh.m, sh.n}, 7e3f);
      ASSERT_OK(ops().NormMatMul(xd.tensor, gd.tensor, eps, wd.tensor,
                                 with_bias ? bd.tensor : Tensor(), /*gated=*/true, out.tensor));
      std::vector<double> y, y_bound;
      NormProductReference(act(), x, g, eps, w, with_bias ? &bias : nullptr, sh.m, rows, sh.k,
                           &y, &y_bound);
      // out = silu(gate) * up. A product error e_g, e_u moves it by at most
      // |silu'(gate)| |up| e_g + |silu(gate)| e_u, with |silu'| < 1.1; plus its own rounding.
      std::vector<double> ref(sh.m * sh.n), bound(sh.m * sh.n);
      for (int64_t r = 0; r < sh.m; ++r) {
        for (int64_t c = 0; c < sh.n; ++c) {
          const int64_t gi = r * rows + c, ui = gi + sh.n;
          const double gate = y[gi], up = y[ui];
          const double silu = gate / (1.0 + std::exp(-gate));
          ref[r * sh.n + c] = silu * up;
          bound[r * sh.n + c] = 1.1 * std::fabs(up) * y_bound[gi] +
                                std::fabs(silu) * y_bound[ui] + std::fabs(silu * up);
        }
      }
      testing::ExpectNearBounded(Download(backend(), out.tensor), ref, bound, tol(),
                                 "gated NormMatMul");
    }
  }
}

TEST_P(FusedMatMulTest, MatMulAddAddsIntoTheResidual) {
  for (const Shape& sh : kShapes) {
    SCOPED_TRACE(::testing::Message() << sh.m << "x" << sh.n << "x" << sh.k);
    const uint64_t seed = sh.m * 10000 + sh.n * 100 + sh.k;
    const std::vector<float> x = RoundTo(act(), RandomFloats(sh.m * sh.k, seed, 1, 8.0f));
    const std::vector<float> w = RoundTo(wdt(), RandomFloats(sh.n * sh.k, seed, 2));
    const std::vector<float> bias = RandomFloats(sh.n, seed, 3, 2.0f);
    const std::vector<float> residual = RandomFloats(sh.m * sh.n, seed, 4, 5.0f);
    DeviceTensor xd = Upload(backend(), x, act(), {sh.m, sh.k});
    DeviceTensor wd = Upload(backend(), w, wdt(), {sh.n, sh.k});
    DeviceTensor bd = Upload(backend(), bias, DType::kF32, {sh.n});
    DeviceTensor rd = Upload(backend(), residual, DType::kF32, {sh.m, sh.n});
    ASSERT_OK(ops().MatMulAdd(xd.tensor, wd.tensor, bd.tensor, rd.tensor));
    std::vector<double> ref(sh.m * sh.n), bound(sh.m * sh.n);
    for (int64_t r = 0; r < sh.m; ++r) {
      for (int64_t c = 0; c < sh.n; ++c) {
        double sum = residual[r * sh.n + c] + bias[c];
        double abs_sum = std::fabs(residual[r * sh.n + c]) + std::fabs(bias[c]);
        for (int64_t i = 0; i < sh.k; ++i) {
          const double term = double(x[r * sh.k + i]) * w[c * sh.k + i];
          sum += term;
          abs_sum += std::fabs(term);
        }
        ref[r * sh.n + c] = sum;
        bound[r * sh.n + c] = abs_sum;
      }
    }
    testing::ExpectNearBounded(Download(backend(), rd.tensor), ref, bound, tol(), "MatMulAdd");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, FusedMatMulTest, ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenfab
