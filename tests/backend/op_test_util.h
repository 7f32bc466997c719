// Shared harness of the backend op tests: which backends to run, moving host data to and from a
// backend's memory in its own dtypes, seeded random inputs and the error measure against the
// double-precision references the tests write out by hand.
//
// Every op test is parameterised over BackendNames(), so a backend that registers itself (the
// CUDA one when built) runs the same test bodies as the CPU; each backend gets its own tolerance
// (Tolerance) because a bf16 backend cannot match f32 math to 1e-6. Inputs are rounded to the
// dtype the backend stores them in before the reference sees them, so that the reference and
// the backend compute on identical numbers and only the arithmetic differs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/tensor.h"

namespace tokenfab::testing {

// Every backend compiled into this test binary that can run here ("cpu", plus "cuda" in CUDA
// builds on a machine with a GPU).
std::vector<std::string> BackendNames();

// Largest accepted |got - ref| / max|ref| for `backend`'s f32-accumulating ops.
double Tolerance(const std::string& backend);

// Uniform values in [-scale, scale), a pure function of (seed, stream, index).
std::vector<float> RandomFloats(int64_t n, uint64_t seed, uint64_t stream, float scale = 1.0f);

// `values` rounded to what `dtype` can hold (identity for f32).
std::vector<float> RoundTo(DType dtype, std::vector<float> values);

// A tensor that owns its backend memory.
struct DeviceTensor {
  DeviceBuffer buffer;
  Tensor tensor;
};

// Copies `values` (converted to `dtype`) into fresh backend memory of shape `dims`.
DeviceTensor Upload(Backend& backend, const std::vector<float>& values, DType dtype,
                    std::initializer_list<int64_t> dims);
DeviceTensor UploadI32(Backend& backend, const std::vector<int32_t>& values,
                       std::initializer_list<int64_t> dims);
// Fresh backend memory of shape `dims`, every element `fill` (converted to `dtype`).
DeviceTensor Filled(Backend& backend, DType dtype, std::initializer_list<int64_t> dims, float fill);

// The tensor's contents as floats (any float dtype) or ints (i32).
std::vector<float> Download(Backend& backend, const Tensor& t);
std::vector<int32_t> DownloadI32(Backend& backend, const Tensor& t);

// max_i |got[i] - ref[i]| / max_i |ref[i]|; +inf if sizes differ or anything is not finite.
double RelativeError(const std::vector<float>& got, const std::vector<double>& ref);

// Fails (non-fatally) unless RelativeError(got, ref) <= tol; also insists that ref is not all
// zeros, so that a broken reference cannot make the comparison vacuous.
void ExpectNear(const std::vector<float>& got, const std::vector<double>& ref, double tol,
                const std::string& what);

// For sums whose terms may cancel (dot products, attention outputs): fails unless every
// |got[i] - ref[i]| <= tol * bound[i], where bound[i] is the sum of the absolute values of the
// terms that make up ref[i] (the quantity floating-point summation error is proportional to).
void ExpectNearBounded(const std::vector<float>& got, const std::vector<double>& ref,
                       const std::vector<double>& bound, double tol, const std::string& what);

// Mixed into each op test fixture: a 2-thread instance of the backend under test. Call
// InitBackend from SetUp and check ok() (ASSERT) before using it.
class BackendFixture {
 protected:
  void InitBackend(const std::string& name);
  bool ok() const { return backend_ != nullptr; }
  Backend& backend() { return *backend_; }
  Ops& ops() { return backend_->ops(); }
  DType act() const { return backend_->activation_dtype(); }
  double tol() const { return Tolerance(name_); }
  const std::string& backend_name() const { return name_; }

 private:
  std::string name_;
  std::unique_ptr<Backend> backend_;
};

}  // namespace tokenfab::testing
