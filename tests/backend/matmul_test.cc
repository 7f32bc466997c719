// MatMul of every backend, for every weight dtype, with and without bias, over the shapes where
// a blocked GEMM has edge paths: few rows (M = 1..7, and 13..24 around the CPU's switch from its
// dot-product path to the 6-row micro-kernel at 16 rows, covering every row remainder), N not a
// multiple of the 16-column strips or 64-column tasks, and K not a multiple of the 256-deep K
// blocks, down to K < 8 (below one AVX2 vector).
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

// (backend, stored weight dtype, with bias)
using MatMulParam = std::tuple<std::string, DType, bool>;

class MatMulTest : public ::testing::TestWithParam<MatMulParam>, public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(std::get<0>(GetParam()));
    ASSERT_TRUE(ok());
  }

  // Runs one x[m, k] @ w[n, k]^T (+ bias) and compares with the double reference.
  void Check(int64_t m, int64_t n, int64_t k, DType out_dtype) {
    const DType w_dtype = backend().WeightDType(std::get<1>(GetParam()));
    const bool with_bias = std::get<2>(GetParam());
    SCOPED_TRACE(::testing::Message()
                 << "M=" << m << " N=" << n << " K=" << k << " w " << DTypeName(w_dtype) << " out "
                 << DTypeName(out_dtype) << (with_bias ? " +bias" : ""));
    const uint64_t stream = static_cast<uint64_t>((m * 1000 + n) * 1000 + k);
    const std::vector<float> x = RoundTo(act(), RandomFloats(m * k, 11, stream));
    const std::vector<float> w = RoundTo(w_dtype, RandomFloats(n * k, 12, stream));
    const std::vector<float> bias = RandomFloats(n, 13, stream, 4.0f);
    DeviceTensor xd = Upload(backend(), x, act(), {m, k});
    DeviceTensor wd = Upload(backend(), w, w_dtype, {n, k});
    DeviceTensor bd = Upload(backend(), bias, DType::kF32, {n});
    // Garbage in the output: the op must overwrite, not accumulate into, what is there.
    DeviceTensor out = testing::Filled(backend(), out_dtype, {m, n}, 1e4f);
    ASSERT_OK(ops().MatMul(xd.tensor, wd.tensor, with_bias ? bd.tensor : Tensor(), out.tensor));
    std::vector<double> ref(m * n), bound(m * n);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        double sum = with_bias ? bias[c] : 0.0, abs_sum = with_bias ? std::fabs(bias[c]) : 0.0;
        for (int64_t i = 0; i < k; ++i) {
          const double term = double(x[r * k + i]) * w[c * k + i];
          sum += term;
          abs_sum += std::fabs(term);
        }
        ref[r * n + c] = sum;
        bound[r * n + c] = abs_sum;
      }
    }
    testing::ExpectNearBounded(Download(backend(), out.tensor), ref, bound, tol(), "MatMul");
  }
};

TEST_P(MatMulTest, FewRowsAllEdgeColumnsAndDepths) {
  for (int64_t m = 1; m <= 7; ++m) {
    for (int64_t n : {1, 5, 16, 17, 33, 64, 65, 100}) {
      for (int64_t k : {1, 3, 7, 8, 16, 17, 100}) Check(m, n, k, act());
    }
  }
}

TEST_P(MatMulTest, RowsAroundTheDotProductThreshold) {
  for (int64_t m = 13; m <= 24; ++m) {
    for (int64_t n : {1, 17, 64, 65}) {
      for (int64_t k : {3, 16, 17}) Check(m, n, k, act());
    }
  }
}

TEST_P(MatMulTest, DepthsAroundTheKBlock) {
  for (int64_t m : {1, 4, 7, 13, 16, 17, 23}) {
    for (int64_t k : {255, 256, 257, 513}) Check(m, 37, k, act());
  }
}

TEST_P(MatMulTest, ManyRowsAndTasks) {
  // More rows than one micro-kernel and more columns than one task; uneven everywhere.
  Check(64, 130, 96, act());
  Check(97, 17, 300, act());
  Check(12, 64, 256, act());
  Check(19, 200, 5, act());
}

TEST_P(MatMulTest, F32OutputForLogits) {
  // The lm_head writes f32 logits whatever the activation dtype.
  for (int64_t m : {1, 3, 6, 9}) Check(m, 103, 64, DType::kF32);
}

TEST_P(MatMulTest, ZeroRowsIsANoOp) {
  const DType w_dtype = backend().WeightDType(std::get<1>(GetParam()));
  DeviceTensor wd = Upload(backend(), RandomFloats(8 * 4, 1, 1), w_dtype, {8, 4});
  DeviceTensor xd = testing::Filled(backend(), act(), {1, 4}, 1.0f);
  DeviceTensor out = testing::Filled(backend(), act(), {1, 8}, 0.0f);
  EXPECT_OK(ops().MatMul(xd.tensor.Rows(0, 0), wd.tensor, Tensor(), out.tensor.Rows(0, 0)));
}

INSTANTIATE_TEST_SUITE_P(Backends, MatMulTest,
                         ::testing::Combine(::testing::ValuesIn(testing::BackendNames()),
                                            ::testing::Values(DType::kF32, DType::kBF16,
                                                              DType::kF16),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  std::string(DTypeName(std::get<1>(info.param))) +
                                  (std::get<2>(info.param) ? "_bias" : "_nobias");
                         });

}  // namespace
}  // namespace tokenfab
