// Row-wise CPU ops and the GEMM entry points: embedding, RMSNorm, row gathers, MatMul and the
// fused block projections (RmsNorm then MatMul, optionally gated to silu(gate) * up; MatMul
// added into the residual). Norm statistics accumulate in double so that the
// reference is at least as exact as torch's f32 reductions.
#include <cmath>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_matmul.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/op_checks.h"
#include "backend/op_composition.h"

namespace tokenfab {
namespace {

void NormalizeRow(const float* x, const float* weight, float eps, int64_t width, float* out) {
  double sum_sq = 0.0;
  for (int64_t i = 0; i < width; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float variance = static_cast<float>(sum_sq / static_cast<double>(width));
  const float inv_rms = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < width; ++i) out[i] = weight[i] * (x[i] * inv_rms);
}

}  // namespace

Status CpuOps::Embedding(const Tensor& ids, const Tensor& table, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckEmbedding(ids, table, out, DType::kF32));
  const int64_t n = ids.dim(0), vocab = table.dim(0), width = table.dim(1);
  const int32_t* id = ids.as<int32_t>();
  for (int64_t t = 0; t < n; ++t) {
    if (id[t] < 0 || id[t] >= vocab) {
      return InvalidArgumentError("token id " + std::to_string(id[t]) + " is out of range [0, " +
                                  std::to_string(vocab) + ")");
    }
  }
  const size_t row_bytes = static_cast<size_t>(width) * DTypeSize(table.dtype);
  pool_->ParallelFor(n, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const char* row = static_cast<const char*>(table.data) + id[t] * row_bytes;
      WidenToF32(row, table.dtype, width, out.as<float>() + t * width);
    }
  });
  return Status::Ok();
}

Status CpuOps::RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckRmsNorm(x, weight, out, DType::kF32));
  const int64_t width = x.dim(1);
  pool_->ParallelFor(x.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      NormalizeRow(x.as<float>() + r * width, weight.as<float>(), eps, width,
                   out.as<float>() + r * width);
    }
  });
  return Status::Ok();
}

Status CpuOps::MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckMatMul(x, w, bias, out, DType::kF32));
  CpuGemm(x.as<float>(), x.dim(0), x.dim(1), w.data, w.dtype, w.dim(0),
          bias.empty() ? nullptr : bias.as<float>(), out.as<float>(), *pool_);
  return Status::Ok();
}

Status CpuOps::NormMatMul(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w,
                          const Tensor& bias, bool gated, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckNormMatMul(x, norm_weight, w, bias, gated, out, DType::kF32));
  const int64_t rows = x.dim(0), width = x.dim(1), n = w.dim(0);
  scratch_in_.resize(static_cast<size_t>(rows * width));
  pool_->ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      NormalizeRow(x.as<float>() + r * width, norm_weight.as<float>(), eps, width,
                   scratch_in_.data() + r * width);
    }
  });
  float* product = out.as<float>();
  if (gated) {
    scratch_out_.resize(static_cast<size_t>(rows * n));
    product = scratch_out_.data();
  }
  CpuGemm(scratch_in_.data(), rows, width, w.data, w.dtype, n,
          bias.empty() ? nullptr : bias.as<float>(), product, *pool_);
  if (!gated) return Status::Ok();
  const int64_t half = n / 2;
  pool_->ParallelFor(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* gate = product + r * n;
      const float* up = gate + half;
      float* o = out.as<float>() + r * half;
      for (int64_t i = 0; i < half; ++i) o[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    }
  });
  return Status::Ok();
}

Status CpuOps::MatMulAdd(const Tensor& x, const Tensor& w, const Tensor& bias,
                         const Tensor& residual) {
  TF_RETURN_IF_ERROR(CheckMatMulAdd(x, w, bias, residual, DType::kF32));
  const int64_t rows = x.dim(0), k = w.dim(1), n = w.dim(0);
  scratch_out_.resize(static_cast<size_t>(rows * n));
  CpuGemm(x.as<float>(), rows, k, w.data, w.dtype, n, bias.empty() ? nullptr : bias.as<float>(),
          scratch_out_.data(), *pool_);
  float* res = residual.as<float>();
  pool_->ParallelFor(rows * n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) res[i] += scratch_out_[i];
  }, 4096);
  return Status::Ok();
}

Status CpuOps::ProjectionChain(const ProjectionStage* stages, int count) {
  return ComposeProjectionChain(*this, stages, count);
}

Status CpuOps::GatherRows(const Tensor& in, const Tensor& indices, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckGatherRows(in, indices, out));
  const size_t row_bytes = static_cast<size_t>(in.dim(1)) * DTypeSize(in.dtype);
  const int32_t* index = indices.as<int32_t>();
  for (int64_t i = 0; i < indices.dim(0); ++i) {
    if (index[i] < 0 || index[i] >= in.dim(0)) {
      return InvalidArgumentError("GatherRows: index " + std::to_string(index[i]) +
                                  " out of range");
    }
    std::memcpy(static_cast<char*>(out.data) + i * row_bytes,
                static_cast<const char*>(in.data) + index[i] * row_bytes, row_bytes);
  }
  return Status::Ok();
}

}  // namespace tokenfab
