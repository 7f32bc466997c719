// Argument checks shared by every backend's ops, so that all of them reject the same bad shapes
// with the same messages. Each returns InvalidArgument naming the op and the operand.
#pragma once

#include "backend/attention_metadata.h"
#include "backend/ops.h"
#include "base/status.h"

namespace tokenfab {

Status CheckEmbedding(const Tensor& ids, const Tensor& table, const Tensor& out, DType act);
Status CheckRmsNorm(const Tensor& x, const Tensor& weight, const Tensor& out, DType act);
Status CheckMatMul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
                   DType act);
Status CheckPrepareQkv(const QkvArgs& args, const AttentionMetadata& meta, DType act);
Status CheckAttention(const AttentionArgs& args, const AttentionMetadata& meta, DType act);
Status CheckNormMatMul(const Tensor& x, const Tensor& norm_weight, const Tensor& w,
                       const Tensor& bias, bool gated, const Tensor& out, DType act);
Status CheckMatMulAdd(const Tensor& x, const Tensor& w, const Tensor& bias,
                      const Tensor& residual, DType act);
Status CheckMoeRoute(const Tensor& logits, const Tensor& ids, const Tensor& weights);
Status CheckMoeExperts(const MoeArgs& args, DType act);
Status CheckMoeBlock(const MoeBlockArgs& args, DType act);
Status CheckGatherRows(const Tensor& in, const Tensor& indices, const Tensor& out);
Status CheckSample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                   const Tensor& logprobs);

}  // namespace tokenfab
