#include "backend/op_checks.h"

#include <string>

#include "backend/device_sampling.h"
#include "backend/op_composition.h"

namespace tokenfab {
namespace {

Status Bad(const char* op, const std::string& what) {
  return InvalidArgumentError(std::string(op) + ": " + what);
}

bool IsWeightDType(DType t) { return t == DType::kBF16 || t == DType::kF16 || t == DType::kF32; }

// Activations may also be f32 where precision matters: the residual stream and router inputs.
bool IsActOrF32(DType t, DType act) { return t == act || t == DType::kF32; }

std::string Describe(const char* name, const Tensor& t) {
  return std::string(name) + " " + std::string(DTypeName(t.dtype)) + t.ShapeString();
}

}  // namespace

Status CheckEmbedding(const Tensor& ids, const Tensor& table, const Tensor& out, DType act) {
  if (ids.dtype != DType::kI32 || ids.rank != 1) return Bad("Embedding", Describe("ids", ids));
  if (!IsWeightDType(table.dtype) || table.rank != 2) {
    return Bad("Embedding", Describe("table", table));
  }
  if (!IsActOrF32(out.dtype, act) || out.rank != 2 || out.dim(0) != ids.dim(0) ||
      out.dim(1) != table.dim(1)) {
    return Bad("Embedding", Describe("out", out));
  }
  return Status::Ok();
}

Status CheckRmsNorm(const Tensor& x, const Tensor& weight, const Tensor& out, DType act) {
  if (!IsActOrF32(x.dtype, act) || x.rank != 2) return Bad("RmsNorm", Describe("x", x));
  if (weight.dtype != DType::kF32 || weight.rank != 1 || weight.dim(0) != x.dim(1)) {
    return Bad("RmsNorm", Describe("weight", weight));
  }
  if (!IsActOrF32(out.dtype, act) || out.rank != 2 || out.dim(0) != x.dim(0) ||
      out.dim(1) != x.dim(1)) {
    return Bad("RmsNorm", Describe("out", out));
  }
  return Status::Ok();
}

Status CheckMatMul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
                   DType act) {
  if (!IsActOrF32(x.dtype, act) || x.rank != 2) return Bad("MatMul", Describe("x", x));
  if (!IsWeightDType(w.dtype) || w.rank != 2 || w.dim(1) != x.dim(1)) {
    return Bad("MatMul", Describe("w", w) + " for " + Describe("x", x));
  }
  if (!bias.empty() && (bias.dtype != DType::kF32 || bias.rank != 1 || bias.dim(0) != w.dim(0))) {
    return Bad("MatMul", Describe("bias", bias));
  }
  if ((out.dtype != act && out.dtype != DType::kF32) || out.rank != 2 ||
      out.dim(0) != x.dim(0) || out.dim(1) != w.dim(0)) {
    return Bad("MatMul", Describe("out", out));
  }
  return Status::Ok();
}

Status CheckPrepareQkv(const QkvArgs& a, const AttentionMetadata& meta, DType act) {
  const int64_t hq = a.num_q_heads, hkv = a.num_kv_heads, d = a.head_dim;
  if (hq <= 0 || hkv <= 0 || d <= 0 || d % 2 != 0 || hq % hkv != 0) {
    return Bad("PrepareQkv", "bad head counts " + std::to_string(hq) + "/" + std::to_string(hkv) +
                                 " x " + std::to_string(d));
  }
  const int64_t t = meta.num_tokens;
  if (a.qkv.dtype != act || a.qkv.rank != 2 || a.qkv.dim(0) != t ||
      a.qkv.dim(1) != (hq + 2 * hkv) * d) {
    return Bad("PrepareQkv", Describe("qkv", a.qkv));
  }
  if (a.q_out.dtype != act || a.q_out.rank != 2 || a.q_out.dim(0) != t ||
      a.q_out.dim(1) != hq * d) {
    return Bad("PrepareQkv", Describe("q_out", a.q_out));
  }
  for (const Tensor* norm : {&a.q_norm, &a.k_norm}) {
    if (!norm->empty() && (norm->dtype != DType::kF32 || norm->rank != 1 || norm->dim(0) != d)) {
      return Bad("PrepareQkv", Describe("q/k norm", *norm));
    }
  }
  if (a.inv_freq.dtype != DType::kF32 || a.inv_freq.rank != 1 || a.inv_freq.dim(0) != d / 2) {
    return Bad("PrepareQkv", Describe("inv_freq", a.inv_freq));
  }
  for (const Tensor* cache : {&a.k_cache, &a.v_cache}) {
    if (cache->dtype != act || cache->rank != 4 || cache->dim(1) != meta.block_size ||
        cache->dim(2) != hkv || cache->dim(3) != d) {
      return Bad("PrepareQkv", Describe("kv cache", *cache));
    }
  }
  return Status::Ok();
}

Status CheckAttention(const AttentionArgs& a, const AttentionMetadata& meta, DType act) {
  const int64_t hq = a.num_q_heads, hkv = a.num_kv_heads, d = a.head_dim;
  if (hq <= 0 || hkv <= 0 || d <= 0 || hq % hkv != 0) return Bad("Attention", "bad head counts");
  const int64_t t = meta.num_tokens;
  for (const Tensor* x : {&a.q, &a.out}) {
    if (x->dtype != act || x->rank != 2 || x->dim(0) != t || x->dim(1) != hq * d) {
      return Bad("Attention", Describe("q/out", *x));
    }
  }
  for (const Tensor* cache : {&a.k_cache, &a.v_cache}) {
    if (cache->dtype != act || cache->rank != 4 || cache->dim(1) != meta.block_size ||
        cache->dim(2) != hkv || cache->dim(3) != d) {
      return Bad("Attention", Describe("kv cache", *cache));
    }
  }
  if (a.sliding_window < 0) return Bad("Attention", "negative sliding window");
  return Status::Ok();
}

Status CheckNormMatMul(const Tensor& x, const Tensor& norm_weight, const Tensor& w,
                       const Tensor& bias, bool gated, const Tensor& out, DType act) {
  if (x.dtype != DType::kF32 || x.rank != 2) return Bad("NormMatMul", Describe("x", x));
  if (norm_weight.dtype != DType::kF32 || norm_weight.rank != 1 ||
      norm_weight.dim(0) != x.dim(1)) {
    return Bad("NormMatMul", Describe("norm_weight", norm_weight));
  }
  if (gated) {
    if (w.rank != 2 || w.dim(0) % 2 != 0) {
      return Bad("NormMatMul", "gated needs gate and up rows: " + Describe("w", w));
    }
    if (out.dtype != act || out.rank != 2 || out.dim(0) != x.dim(0) ||
        out.dim(1) != w.dim(0) / 2) {
      return Bad("NormMatMul", "gated " + Describe("out", out) + " for " + Describe("w", w));
    }
  }
  const Tensor x_as_act(x.data, act, {x.dim(0), x.dim(1)});  // the normalised rows' shape
  // Gated: the product y the check describes is [M, N], of which out holds the gated half.
  const Tensor y = gated ? Tensor(out.data, act, {x.dim(0), w.dim(0)}) : out;
  const Status s = CheckMatMul(x_as_act, w, bias, y, act);
  return s.ok() ? s : Bad("NormMatMul", s.message());
}

Status CheckMatMulAdd(const Tensor& x, const Tensor& w, const Tensor& bias,
                      const Tensor& residual, DType act) {
  if (x.dtype != act || x.rank != 2) return Bad("MatMulAdd", Describe("x", x));
  const int64_t k = x.dim(1);
  if (!IsWeightDType(w.dtype) || w.rank != 2 || w.dim(1) != k) {
    return Bad("MatMulAdd", Describe("w", w) + " for " + Describe("x", x));
  }
  if (!bias.empty() && (bias.dtype != DType::kF32 || bias.rank != 1 || bias.dim(0) != w.dim(0))) {
    return Bad("MatMulAdd", Describe("bias", bias));
  }
  if (residual.dtype != DType::kF32 || residual.rank != 2 || residual.dim(0) != x.dim(0) ||
      residual.dim(1) != w.dim(0)) {
    return Bad("MatMulAdd", Describe("residual", residual));
  }
  return Status::Ok();
}

Status CheckMoeRoute(const Tensor& logits, const Tensor& ids, const Tensor& weights) {
  if (logits.rank != 2) return Bad("MoeRoute", Describe("logits", logits));
  if (ids.dtype != DType::kI32 || ids.rank != 2 || ids.dim(0) != logits.dim(0) ||
      ids.dim(1) > logits.dim(1) || ids.dim(1) <= 0) {
    return Bad("MoeRoute", Describe("ids", ids));
  }
  if (weights.dtype != DType::kF32 || weights.rank != 2 || weights.dim(0) != ids.dim(0) ||
      weights.dim(1) != ids.dim(1)) {
    return Bad("MoeRoute", Describe("weights", weights));
  }
  return Status::Ok();
}

Status CheckMoeExperts(const MoeArgs& a, DType act) {
  if (!IsActOrF32(a.x.dtype, act) || a.x.rank != 2) return Bad("MoeExperts", Describe("x", a.x));
  const int64_t t = a.x.dim(0), h = a.x.dim(1);
  if (a.gate_up.rank != 3 || !IsWeightDType(a.gate_up.dtype) || a.gate_up.dim(2) != h ||
      a.gate_up.dim(1) % 2 != 0) {
    return Bad("MoeExperts", Describe("gate_up", a.gate_up));
  }
  const int64_t e = a.gate_up.dim(0), i = a.gate_up.dim(1) / 2;
  if (a.down.rank != 3 || a.down.dtype != a.gate_up.dtype || a.down.dim(0) != e ||
      a.down.dim(1) != h || a.down.dim(2) != i) {
    return Bad("MoeExperts", Describe("down", a.down));
  }
  if (a.expert_ids.dtype != DType::kI32 || a.expert_ids.rank != 2 || a.expert_ids.dim(0) != t) {
    return Bad("MoeExperts", Describe("expert_ids", a.expert_ids));
  }
  if (a.expert_weights.dtype != DType::kF32 || a.expert_weights.rank != 2 ||
      a.expert_weights.dim(0) != t || a.expert_weights.dim(1) != a.expert_ids.dim(1)) {
    return Bad("MoeExperts", Describe("expert_weights", a.expert_weights));
  }
  if (a.residual.dtype != DType::kF32 || a.residual.rank != 2 || a.residual.dim(0) != t ||
      a.residual.dim(1) != h) {
    return Bad("MoeExperts", Describe("residual", a.residual));
  }
  return Status::Ok();
}

Status CheckMoeBlock(const MoeBlockArgs& a, DType act) {
  for (const Tensor* f32 : {&a.residual, &a.normed, &a.logits}) {
    if (f32->dtype != DType::kF32) return Bad("MoeBlock", Describe("residual/normed/logits", *f32));
  }
  Status s = CheckRmsNorm(a.residual, a.norm_weight, a.normed, act);
  if (s.ok()) s = CheckMatMul(a.normed, a.router, Tensor(), a.logits, act);
  if (s.ok()) s = CheckMoeRoute(a.logits, a.expert_ids, a.expert_weights);
  if (s.ok()) s = CheckMoeExperts(MoeBlockExperts(a), act);
  if (!s.ok()) return Bad("MoeBlock", s.message());
  if (a.router.dim(0) != a.gate_up.dim(0)) {
    return Bad("MoeBlock", "router " + Describe("w", a.router) + " for " +
                               Describe("gate_up", a.gate_up));
  }
  return Status::Ok();
}

Status CheckGatherRows(const Tensor& in, const Tensor& indices, const Tensor& out) {
  if (in.rank != 2) return Bad("GatherRows", Describe("in", in));
  if (indices.dtype != DType::kI32 || indices.rank != 1) {
    return Bad("GatherRows", Describe("indices", indices));
  }
  if (out.dtype != in.dtype || out.rank != 2 || out.dim(0) != indices.dim(0) ||
      out.dim(1) != in.dim(1)) {
    return Bad("GatherRows", Describe("out", out));
  }
  return Status::Ok();
}

Status CheckSample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                   const Tensor& logprobs) {
  if (logits.dtype != DType::kF32 || logits.rank != 2 || logits.dim(1) == 0) {
    return Bad("Sample", Describe("logits", logits));
  }
  const int64_t rows = logits.dim(0);
  if (params.dtype != DType::kU8 || params.bytes() != rows * sizeof(DeviceSamplingParams)) {
    return Bad("Sample", Describe("params", params));
  }
  if (tokens.dtype != DType::kI32 || tokens.numel() != rows) {
    return Bad("Sample", Describe("tokens", tokens));
  }
  if (logprobs.dtype != DType::kF32 || logprobs.numel() != rows) {
    return Bad("Sample", Describe("logprobs", logprobs));
  }
  return Status::Ok();
}

}  // namespace tokenfab
