// Row-wise ops (Embedding, RmsNorm, GatherRows) of every backend against
// double-precision references written out here.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "op_test_util.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::BackendNames;
using testing::DeviceTensor;
using testing::Download;
using testing::DownloadI32;
using testing::ExpectNear;
using testing::RandomFloats;
using testing::RoundTo;
using testing::Tolerance;
using testing::Upload;
using testing::UploadI32;

class ElementwiseOpsTest : public ::testing::TestWithParam<std::string>,
                           public testing::BackendFixture {
 protected:
  void SetUp() override {
    InitBackend(GetParam());
    ASSERT_TRUE(ok());
  }
};

// Row widths that hit vector tails (1, 7, 17), a power of two and a prime above it.
constexpr int64_t kWidths[] = {1, 7, 17, 64, 97, 1000};

std::vector<double> RmsNormReference(const std::vector<float>& x, const std::vector<float>& w,
                                     double eps, int64_t rows, int64_t width) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double sum_sq = 0.0;
    for (int64_t i = 0; i < width; ++i) sum_sq += double(x[r * width + i]) * x[r * width + i];
    const double inv_rms = 1.0 / std::sqrt(sum_sq / width + eps);
    for (int64_t i = 0; i < width; ++i) out[r * width + i] = w[i] * (x[r * width + i] * inv_rms);
  }
  return out;
}

TEST_P(ElementwiseOpsTest, EmbeddingCopiesRowsExactlyForEveryWeightDType) {
  for (DType stored : {DType::kF32, DType::kBF16, DType::kF16}) {
    const DType dtype = backend().WeightDType(stored);
    SCOPED_TRACE(std::string(DTypeName(dtype)));
    const int64_t vocab = 53, width = 37;
    const std::vector<float> table = RoundTo(dtype, RandomFloats(vocab * width, 1, 0, 2.0f));
    const std::vector<int32_t> ids = {0, 52, 7, 7, 31, 0, 1, 52, 19};
    const int64_t n = static_cast<int64_t>(ids.size());
    DeviceTensor t = Upload(backend(), table, dtype, {vocab, width});
    DeviceTensor i = UploadI32(backend(), ids, {n});
    DeviceTensor out = testing::Filled(backend(), act(), {n, width}, 0.0f);
    ASSERT_OK(ops().Embedding(i.tensor, t.tensor, out.tensor));
    const std::vector<float> got = Download(backend(), out.tensor);
    // The table values are representable in the activation dtype when it is at least as wide;
    // otherwise rounding to act is the only allowed change.
    const std::vector<float> want_rows = RoundTo(act(), table);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < width; ++c) {
        ASSERT_EQ(got[r * width + c], want_rows[ids[r] * width + c]) << "row " << r << " col " << c;
      }
    }
  }
}

TEST_P(ElementwiseOpsTest, RmsNormMatchesReference) {
  for (int64_t width : kWidths) {
    for (int64_t rows : {1, 3, 16}) {
      SCOPED_TRACE(::testing::Message() << rows << " x " << width);
      const float eps = 1e-5f;
      // Rows of very different magnitude: the normalisation must not depend on the scale.
      std::vector<float> x = RandomFloats(rows * width, 3, width, 1.0f);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < width; ++i) x[r * width + i] *= std::pow(10.0f, float(r % 4) - 1);
      }
      x = RoundTo(act(), x);
      const std::vector<float> w = RandomFloats(width, 4, width, 2.0f);
      DeviceTensor xd = Upload(backend(), x, act(), {rows, width});
      DeviceTensor wd = Upload(backend(), w, DType::kF32, {width});
      DeviceTensor out = testing::Filled(backend(), act(), {rows, width}, 0.0f);
      ASSERT_OK(ops().RmsNorm(xd.tensor, wd.tensor, eps, out.tensor));
      ExpectNear(Download(backend(), out.tensor), RmsNormReference(x, w, eps, rows, width), tol(),
                 "RmsNorm");
      EXPECT_EQ(Download(backend(), xd.tensor), x) << "RmsNorm changed its input";
    }
  }
}

TEST_P(ElementwiseOpsTest, RmsNormOfAZeroRowIsZero) {
  // eps keeps 0 / rms finite: a zero row normalises to zeros, not NaN.
  DeviceTensor xd = testing::Filled(backend(), act(), {2, 8}, 0.0f);
  DeviceTensor wd = Upload(backend(), std::vector<float>(8, 1.0f), DType::kF32, {8});
  DeviceTensor out = testing::Filled(backend(), act(), {2, 8}, 1.0f);
  ASSERT_OK(ops().RmsNorm(xd.tensor, wd.tensor, 1e-6f, out.tensor));
  EXPECT_EQ(Download(backend(), out.tensor), std::vector<float>(16, 0.0f));
}

TEST_P(ElementwiseOpsTest, GatherRowsCopiesTheIndexedRows) {
  const int64_t rows = 23, width = 19;
  const std::vector<float> in = RoundTo(act(), RandomFloats(rows * width, 9, 0));
  const std::vector<int32_t> index = {22, 0, 5, 5, 11, 22, 1};
  const int64_t m = static_cast<int64_t>(index.size());
  DeviceTensor id = Upload(backend(), in, act(), {rows, width});
  DeviceTensor xd = UploadI32(backend(), index, {m});
  DeviceTensor out = testing::Filled(backend(), act(), {m, width}, 0.0f);
  ASSERT_OK(ops().GatherRows(id.tensor, xd.tensor, out.tensor));
  const std::vector<float> got = Download(backend(), out.tensor);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < width; ++c) {
      ASSERT_EQ(got[r * width + c], in[index[r] * width + c]) << "row " << r;
    }
  }
  // f32 rows (the logits path gathers act rows; any dtype must work the same way).
  DeviceTensor idf = Upload(backend(), in, DType::kF32, {rows, width});
  DeviceTensor outf = testing::Filled(backend(), DType::kF32, {m, width}, 0.0f);
  ASSERT_OK(ops().GatherRows(idf.tensor, xd.tensor, outf.tensor));
  EXPECT_EQ(Download(backend(), outf.tensor), got);
}

INSTANTIATE_TEST_SUITE_P(Backends, ElementwiseOpsTest, ::testing::ValuesIn(BackendNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenfab
