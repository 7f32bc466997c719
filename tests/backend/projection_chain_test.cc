// ProjectionChain on every backend against a double-precision reference of its stages in order:
// a decode layer's shape (output projection into the residual, the normalised gated MLP, the
// down projection into the residual, the next layer's normalised input projection) at awkward
// sizes: rows that do not fit one shared-memory slot of the GPU's streaming kernel (cut into
// pieces), fewer outputs than SMs, biases, f32 outputs. One row takes a GPU's streaming kernel,
// two rows its stage-by-stage path: both are run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "op_test_util.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::DeviceTensor;
using testing::Download;
using testing::RandomFloats;
using testing::RoundTo;
using testing::Upload;

struct ChainShape {
  int64_t hidden, inter, q_out, attn;
  bool bias;
  bool f32_last;  // the last stage stores f32 (as lm_head's logits)
};

// hidden 264 and 97 outputs: fewer rows than an H100 has SMs; inter 8200: a down-projection
// row of 16.4 KB, two pieces of a 16 KB slot; 2048 x 4096: Llama-like rows of whole slots.
constexpr ChainShape kChains[] = {
    {264, 8200, 97, 136, true, false},
    {512, 1032, 1000, 64, false, true},
    {2048, 512, 200, 2048, true, false},
};

class ProjectionChainTest : public ::testing::TestWithParam<std::string>,
                            public testing::BackendFixture {
 protected:
  void SetUp() override {
    // The CUDA backend streams single-row chains as one kernel only when asked (cuda_ops.cc);
    // these tests are that kernel's, so they ask.
    setenv("TOKENFAB_CHAIN", "1", /*overwrite=*/1);
    InitBackend(GetParam());
    ASSERT_TRUE(ok());
  }
  void TearDown() override { unsetenv("TOKENFAB_CHAIN"); }
  DType wdt() { return backend().WeightDType(DType::kBF16); }
};

// x (m rows of k) times w^T (n rows) plus bias, in double.
std::vector<double> Product(const std::vector<double>& x, const std::vector<float>& w,
                            const std::vector<float>* bias, int64_t m, int64_t n, int64_t k) {
  std::vector<double> y(m * n);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double sum = bias ? (*bias)[c] : 0.0;
      for (int64_t i = 0; i < k; ++i) sum += x[r * k + i] * w[c * k + i];
      y[r * n + c] = sum;
    }
  }
  return y;
}

// RmsNorm rows as the backend stores them (rounded to act).
std::vector<double> Normed(DType act, const std::vector<double>& x, const std::vector<float>& g,
                           float eps, int64_t m, int64_t k) {
  std::vector<float> out(m * k);
  for (int64_t r = 0; r < m; ++r) {
    double sq = 0.0;
    for (int64_t i = 0; i < k; ++i) sq += x[r * k + i] * x[r * k + i];
    const double inv = 1.0 / std::sqrt(sq / k + eps);
    for (int64_t i = 0; i < k; ++i) out[r * k + i] = float(g[i] * (x[r * k + i] * inv));
  }
  out = RoundTo(act, out);
  return std::vector<double>(out.begin(), out.end());
}

std::vector<double> Rounded(DType dtype, const std::vector<double>& v) {
  const std::vector<float> r = RoundTo(dtype, std::vector<float>(v.begin(), v.end()));
  return std::vector<double>(r.begin(), r.end());
}

TEST_P(ProjectionChainTest, StagesSeeTheOutputsOfThoseBefore) {
  for (const ChainShape& sh : kChains) {
    for (int64_t m : {1, 2}) {
      SCOPED_TRACE(::testing::Message() << "hidden " << sh.hidden << " inter " << sh.inter << " q "
                                        << sh.q_out << " rows " << m);
      const uint64_t seed = sh.hidden * 7 + sh.inter * 3 + m;
      const float eps = 1e-5f;
      const int64_t h = sh.hidden, in = sh.inter, q = sh.q_out, a = sh.attn;
      const std::vector<float> attn = RoundTo(act(), RandomFloats(m * a, seed, 1, 2.0f));
      const std::vector<float> residual = RandomFloats(m * h, seed, 2, 3.0f);
      const std::vector<float> wo = RoundTo(wdt(), RandomFloats(h * a, seed, 3, 0.2f));
      const std::vector<float> g1 = RandomFloats(h, seed, 4, 1.5f);
      const std::vector<float> wgu = RoundTo(wdt(), RandomFloats(2 * in * h, seed, 5, 0.1f));
      const std::vector<float> wd = RoundTo(wdt(), RandomFloats(h * in, seed, 6, 0.1f));
      const std::vector<float> g2 = RandomFloats(h, seed, 7, 1.5f);
      const std::vector<float> wq = RoundTo(wdt(), RandomFloats(q * h, seed, 8, 0.1f));
      const std::vector<float> bo = RandomFloats(h, seed, 9, 0.5f);
      const std::vector<float> bgu = RandomFloats(2 * in, seed, 10, 0.5f);
      const std::vector<float> bd = RandomFloats(h, seed, 11, 0.5f);
      const std::vector<float> bq = RandomFloats(q, seed, 12, 0.5f);
      const DType last_dtype = sh.f32_last ? DType::kF32 : act();

      DeviceTensor attn_d = Upload(backend(), attn, act(), {m, a});
      DeviceTensor res_d = Upload(backend(), residual, DType::kF32, {m, h});
      DeviceTensor wo_d = Upload(backend(), wo, wdt(), {h, a});
      DeviceTensor g1_d = Upload(backend(), g1, DType::kF32, {h});
      DeviceTensor wgu_d = Upload(backend(), wgu, wdt(), {2 * in, h});
      DeviceTensor wd_d = Upload(backend(), wd, wdt(), {h, in});
      DeviceTensor g2_d = Upload(backend(), g2, DType::kF32, {h});
      DeviceTensor wq_d = Upload(backend(), wq, wdt(), {q, h});
      DeviceTensor bo_d = Upload(backend(), bo, DType::kF32, {h});
      DeviceTensor bgu_d = Upload(backend(), bgu, DType::kF32, {2 * in});
      DeviceTensor bd_d = Upload(backend(), bd, DType::kF32, {h});
      DeviceTensor bq_d = Upload(backend(), bq, DType::kF32, {q});
      DeviceTensor mlp_d = testing::Filled(backend(), act(), {m, in}, 7e3f);
      DeviceTensor q_d = testing::Filled(backend(), last_dtype, {m, q}, 7e3f);

      ProjectionStage st[4];
      st[0].x = attn_d.tensor;
      st[0].w = wo_d.tensor;
      st[0].accumulate = true;
      st[0].out = res_d.tensor;
      st[1].x = res_d.tensor;
      st[1].norm_weight = g1_d.tensor;
      st[1].norm_eps = eps;
      st[1].w = wgu_d.tensor;
      st[1].gated = true;
      st[1].out = mlp_d.tensor;
      st[2].x = mlp_d.tensor;
      st[2].w = wd_d.tensor;
      st[2].accumulate = true;
      st[2].out = res_d.tensor;
      st[3].x = res_d.tensor;
      st[3].norm_weight = g2_d.tensor;
      st[3].norm_eps = eps;
      st[3].w = wq_d.tensor;
      st[3].out = q_d.tensor;
      if (sh.bias) {
        st[0].bias = bo_d.tensor;
        st[1].bias = bgu_d.tensor;
        st[2].bias = bd_d.tensor;
        st[3].bias = bq_d.tensor;
      }
      ASSERT_OK(ops().ProjectionChain(st, 4));

      // The reference, stage by stage, rounding where the backend stores act.
      auto b = [&](const std::vector<float>& v) { return sh.bias ? &v : nullptr; };
      std::vector<double> res(residual.begin(), residual.end());
      const std::vector<double> o =
          Product(std::vector<double>(attn.begin(), attn.end()), wo, b(bo), m, h, a);
      for (int64_t i = 0; i < m * h; ++i) res[i] += o[i];
      const std::vector<double> gu =
          Product(Normed(act(), res, g1, eps, m, h), wgu, b(bgu), m, 2 * in, h);
      const std::vector<double> gu_r = Rounded(act(), gu);
      std::vector<double> mlp(m * in);
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t c = 0; c < in; ++c) {
          const double gate = gu_r[r * 2 * in + c], up = gu_r[r * 2 * in + in + c];
          mlp[r * in + c] = gate / (1.0 + std::exp(-gate)) * up;
        }
      }
      mlp = Rounded(act(), mlp);
      const std::vector<double> down = Product(mlp, wd, b(bd), m, h, in);
      for (int64_t i = 0; i < m * h; ++i) res[i] += down[i];
      const std::vector<double> qv = Product(Normed(act(), res, g2, eps, m, h), wq, b(bq), m, q, h);

      // Each stage's rounding to act may differ by one unit where the sums differ in order;
      // the later stages see that, so they get twice the single-op tolerance.
      testing::ExpectNear(Download(backend(), mlp_d.tensor), mlp, 2 * tol(), "gated stage");
      testing::ExpectNear(Download(backend(), res_d.tensor), res, 2 * tol(), "residual");
      testing::ExpectNear(Download(backend(), q_d.tensor), qv, 2 * tol(), "last stage");
    }
  }
}

TEST_P(ProjectionChainTest, OneNormalisedStageIsNormMatMul) {
  const int64_t h = 4096, n = 6144;
  const std::vector<float> x = RandomFloats(h, 5, 1, 3.0f);
  const std::vector<float> g = RandomFloats(h, 5, 2, 1.5f);
  const std::vector<float> w = RoundTo(wdt(), RandomFloats(n * h, 5, 3, 0.1f));
  DeviceTensor xd = Upload(backend(), x, DType::kF32, {1, h});
  DeviceTensor gd = Upload(backend(), g, DType::kF32, {h});
  DeviceTensor wd = Upload(backend(), w, wdt(), {n, h});
  DeviceTensor chained = testing::Filled(backend(), act(), {1, n}, 7e3f);
  DeviceTensor alone = testing::Filled(backend(), act(), {1, n}, 7e3f);
  ProjectionStage s;
  s.x = xd.tensor;
  s.norm_weight = gd.tensor;
  s.norm_eps = 1e-6f;
  s.w = wd.tensor;
  s.out = chained.tensor;
  ASSERT_OK(ops().ProjectionChain(&s, 1));
  ASSERT_OK(
      ops().NormMatMul(xd.tensor, gd.tensor, 1e-6f, wd.tensor, Tensor(), false, alone.tensor));
  const std::vector<double> ref = Product(
      Normed(act(), std::vector<double>(x.begin(), x.end()), g, 1e-6f, 1, h), w, nullptr, 1, n, h);
  testing::ExpectNear(Download(backend(), chained.tensor), ref, tol(), "chain");
  testing::ExpectNear(Download(backend(), alone.tensor), ref, tol(), "NormMatMul");
}

TEST_P(ProjectionChainTest, RejectsAGatedStageWithoutItsNorm) {
  DeviceTensor x = testing::Filled(backend(), act(), {1, 16}, 1.0f);
  DeviceTensor w = testing::Filled(backend(), wdt(), {8, 16}, 1.0f);
  DeviceTensor out = testing::Filled(backend(), act(), {1, 4}, 0.0f);
  ProjectionStage s;
  s.x = x.tensor;
  s.w = w.tensor;
  s.gated = true;
  s.out = out.tensor;
  EXPECT_FALSE(ops().ProjectionChain(&s, 1).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, ProjectionChainTest,
                         ::testing::ValuesIn(testing::BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenfab
