// Launchers of the row-wise CUDA kernels: embedding gather, RMSNorm (fused with the residual
// add), SiLU*mul, row gather and bias add. bf16 activations, f32 math. Each returns the launch
// error, if any.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

struct EmbeddingParams {
  const int32_t* ids;          // [num_tokens]
  const __nv_bfloat16* table;  // [vocab, hidden]
  void* out;                   // [num_tokens, hidden], bf16 or f32
  bool out_f32;
  int num_tokens;
  int vocab;
  int hidden;
};
cudaError_t LaunchEmbedding(const EmbeddingParams& p, cudaStream_t stream);

struct RmsNormParams {
  const void* x;               // [rows, width], bf16 or f32
  bool x_f32;
  const float* weight;         // [width]
  void* out;                   // [rows, width], bf16 or f32
  bool out_f32;
  int rows;
  int width;
  float eps;
};
cudaError_t LaunchRmsNorm(const RmsNormParams& p, cudaStream_t stream);

struct MatMulF32Params {
  const float* x;          // [m, k]
  const __nv_bfloat16* w;  // [n, k]
  void* out;               // [m, n], bf16 or f32
  bool out_f32;
  int m;
  int n;
  int k;
};
// out = x @ w^T with an f32 left operand (routers over f32 activations), on CUDA cores.
cudaError_t LaunchMatMulF32(const MatMulF32Params& p, cudaStream_t stream);

struct SiluMulParams {
  const __nv_bfloat16* in;  // [rows, 2 * width]: gate, then up
  __nv_bfloat16* out;       // [rows, width]
  int rows;
  int width;
};
cudaError_t LaunchSiluMul(const SiluMulParams& p, cudaStream_t stream);

struct GatherRowsParams {
  const void* in;          // [in_rows, row_bytes]
  const int32_t* indices;  // [out_rows]
  void* out;               // [out_rows, row_bytes]
  int in_rows;
  int out_rows;
  int row_bytes;
};
cudaError_t LaunchGatherRows(const GatherRowsParams& p, cudaStream_t stream);

struct AddBiasParams {
  void* out;          // [rows, cols], bf16 or f32
  bool out_is_f32;
  const float* bias;  // [cols]
  int rows;
  int cols;
};
cudaError_t LaunchAddBias(const AddBiasParams& p, cudaStream_t stream);

}  // namespace tokenfab::cuda
