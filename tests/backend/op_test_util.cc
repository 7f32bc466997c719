#include "op_test_util.h"

#include <cmath>
#include <limits>
#include <map>

#include "backend/backend_registry.h"
#include "backend/host_convert.h"
#include "base/random.h"
#include "test_util.h"

namespace tokenfab::testing {

std::vector<std::string> BackendNames() {
  RegisterBuiltinBackends();
  std::vector<std::string> names;
  // A backend compiled in but without its device (CUDA on a machine with no GPU) is left out.
  for (const std::string& name : RegisteredBackends()) {
    if (CreateBackend(name, BackendOptions{0, 1}).ok()) names.push_back(name);
  }
  return names;
}

double Tolerance(const std::string& backend) {
  // cpu: f32 storage and math; its error against double is a few f32 roundings of a sum.
  // cuda: bf16 activations (8 bits of mantissa) bound what any kernel can achieve.
  static const std::map<std::string, double> kTolerance = {{"cpu", 2e-6}, {"cuda", 2e-2}};
  const auto it = kTolerance.find(backend);
  return it == kTolerance.end() ? 2e-2 : it->second;
}

std::vector<float> RandomFloats(int64_t n, uint64_t seed, uint64_t stream, float scale) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = scale * UniformSymmetricFloat(seed, stream, i);
  return v;
}

std::vector<float> RoundTo(DType dtype, std::vector<float> values) {
  if (dtype == DType::kF32) return values;
  std::vector<uint16_t> narrow(values.size());
  ConvertHost(values.data(), DType::kF32, narrow.data(), dtype, values.size());
  ConvertHost(narrow.data(), dtype, values.data(), DType::kF32, values.size());
  return values;
}

namespace {

DeviceTensor Allocate(Backend& backend, DType dtype, std::initializer_list<int64_t> dims) {
  DeviceTensor d;
  Tensor shape(nullptr, dtype, dims);
  auto buffer = backend.Allocate(shape.bytes());
  EXPECT_TRUE(buffer.ok()) << buffer.status().ToString();
  if (!buffer.ok()) return d;
  d.buffer = std::move(buffer).value();
  d.tensor = Tensor(d.buffer.data(), dtype, dims);
  return d;
}

}  // namespace

DeviceTensor Upload(Backend& backend, const std::vector<float>& values, DType dtype,
                    std::initializer_list<int64_t> dims) {
  DeviceTensor d = Allocate(backend, dtype, dims);
  EXPECT_EQ(static_cast<int64_t>(values.size()), d.tensor.numel());
  std::vector<uint8_t> staging(d.tensor.bytes());
  ConvertHost(values.data(), DType::kF32, staging.data(), dtype, d.tensor.numel());
  EXPECT_OK(backend.CopyToDevice(d.tensor.data, staging.data(), staging.size()));
  EXPECT_OK(backend.Synchronize());
  return d;
}

DeviceTensor UploadI32(Backend& backend, const std::vector<int32_t>& values,
                       std::initializer_list<int64_t> dims) {
  DeviceTensor d = Allocate(backend, DType::kI32, dims);
  EXPECT_EQ(static_cast<int64_t>(values.size()), d.tensor.numel());
  EXPECT_OK(backend.CopyToDevice(d.tensor.data, values.data(), d.tensor.bytes()));
  EXPECT_OK(backend.Synchronize());
  return d;
}

DeviceTensor Filled(Backend& backend, DType dtype, std::initializer_list<int64_t> dims,
                    float fill) {
  const int64_t n = Tensor(nullptr, dtype, dims).numel();
  return Upload(backend, std::vector<float>(n, fill), dtype, dims);
}

std::vector<float> Download(Backend& backend, const Tensor& t) {
  std::vector<uint8_t> raw(t.bytes());
  EXPECT_OK(backend.CopyToHost(raw.data(), t.data, raw.size()));
  EXPECT_OK(backend.Synchronize());
  std::vector<float> out(t.numel());
  ConvertHost(raw.data(), t.dtype, out.data(), DType::kF32, t.numel());
  return out;
}

std::vector<int32_t> DownloadI32(Backend& backend, const Tensor& t) {
  std::vector<int32_t> out(t.numel());
  EXPECT_OK(backend.CopyToHost(out.data(), t.data, t.bytes()));
  EXPECT_OK(backend.Synchronize());
  return out;
}

double RelativeError(const std::vector<float>& got, const std::vector<double>& ref) {
  if (got.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double scale = 0.0, worst = 0.0;
  for (double r : ref) scale = std::max(scale, std::fabs(r));
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - ref[i]));
  }
  return scale > 0.0 ? worst / scale : worst;
}

void ExpectNear(const std::vector<float>& got, const std::vector<double>& ref, double tol,
                const std::string& what) {
  double scale = 0.0;
  for (double r : ref) scale = std::max(scale, std::fabs(r));
  EXPECT_GT(scale, 0.0) << what << ": the reference is all zeros, the comparison tests nothing";
  const double err = RelativeError(got, ref);
  EXPECT_LE(err, tol) << what << ": relative error " << err;
}

void ExpectNearBounded(const std::vector<float>& got, const std::vector<double>& ref,
                       const std::vector<double>& bound, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  ASSERT_EQ(bound.size(), ref.size()) << what;
  double worst = 0.0, scale = 0.0;
  size_t worst_at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]) / std::max(bound[i], 1e-30);
    if (!(err <= worst)) {  // also catches NaN
      worst = std::isfinite(err) ? err : std::numeric_limits<double>::infinity();
      worst_at = i;
    }
  }
  EXPECT_GT(scale, 0.0) << what << ": the reference is all zeros, the comparison tests nothing";
  EXPECT_LE(worst, tol) << what << ": error " << worst << " of the term magnitude at element "
                        << worst_at << " (got " << (got.empty() ? 0.0f : got[worst_at]) << ", want "
                        << (ref.empty() ? 0.0 : ref[worst_at]) << ")";
}

void BackendFixture::InitBackend(const std::string& name) {
  name_ = name;
  BackendOptions options;
  options.num_threads = 2;
  auto backend = CreateBackend(name, options);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  backend_ = std::move(backend).value();
}

}  // namespace tokenfab::testing
