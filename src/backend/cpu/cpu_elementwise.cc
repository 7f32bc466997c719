// Row-wise CPU ops: embedding, RMSNorm (plain and fused with the residual add), SiLU*mul,
// row gathers and the f32 GEMM entry point. Norm statistics accumulate in double so that the
// reference is at least as exact as torch's f32 reductions.
#include <cmath>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_matmul.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/op_checks.h"

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

Status CpuOps::AddRmsNorm(const Tensor& residual, const Tensor& delta, const Tensor& weight,
                          float eps, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckRmsNorm(residual, weight, out, DType::kF32));
  TF_RETURN_IF_ERROR(CheckRmsNorm(delta, weight, out, DType::kF32));
  const int64_t width = residual.dim(1);
  pool_->ParallelFor(residual.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* res = residual.as<float>() + r * width;
      const float* d = delta.as<float>() + r * width;
      for (int64_t i = 0; i < width; ++i) res[i] += d[i];
      NormalizeRow(res, weight.as<float>(), eps, width, out.as<float>() + r * width);
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

Status CpuOps::SiluMul(const Tensor& in, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckSiluMul(in, out, DType::kF32));
  const int64_t inter = out.dim(1);
  pool_->ParallelFor(in.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* gate = in.as<float>() + r * 2 * inter;
      const float* up = gate + inter;
      float* o = out.as<float>() + r * inter;
      for (int64_t i = 0; i < inter; ++i) {
        const float g = gate[i];
        o[i] = g / (1.0f + std::exp(-g)) * up[i];
      }
    }
  });
  return Status::Ok();
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
