#include "backend/cuda/cuda_ops.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/flash_prefill.cuh"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/moe.cuh"
#include "backend/cuda/moe_small_batch.cuh"
#include "backend/cuda/projection_chain.cuh"
#include "backend/cuda/qkv.cuh"
#include "backend/cuda/sample.cuh"
#include "backend/op_checks.h"
#include "backend/op_composition.h"

namespace tokenfab {
namespace {

constexpr DType kAct = DType::kBF16;

template <typename T = __nv_bfloat16>
T* Ptr(const Tensor& t) {
  return static_cast<T*>(t.data);
}

Status RequireBf16(const Tensor& t, const char* what) {
  if (t.dtype != DType::kBF16) {
    return InvalidArgumentError(std::string("cuda: ") + what + " must be bf16, got " +
                                std::string(DTypeName(t.dtype)));
  }
  return Status::Ok();
}

Status Launched(cudaError_t err, const char* kernel) {
  return CudaStatus(err, kernel, __FILE__, __LINE__);
}

}  // namespace

Result<void*> CudaOps::Scratch(size_t bytes) {
  if (scratch_.bytes() < bytes) {
    // Captured graphs may still point at the old buffer: keep it alive, never free it here.
    if (!scratch_.empty()) retired_scratch_.push_back(std::move(scratch_));
    TF_ASSIGN_OR_RETURN(scratch_, backend_->Allocate(std::max<size_t>(bytes, 1 << 20)));
  }
  return scratch_.data();
}

Status CudaOps::Embedding(const Tensor& ids, const Tensor& table, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckEmbedding(ids, table, out, kAct));
  TF_RETURN_IF_ERROR(RequireBf16(table, "embedding table"));
  cuda::EmbeddingParams p{Ptr<int32_t>(ids), Ptr(table), out.data, out.dtype == DType::kF32,
                          static_cast<int>(ids.dim(0)), static_cast<int>(table.dim(0)),
                          static_cast<int>(table.dim(1))};
  return Launched(cuda::LaunchEmbedding(p, backend_->stream()), "Embedding");
}

Status CudaOps::RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckRmsNorm(x, weight, out, kAct));
  cuda::RmsNormParams p{x.data, x.dtype == DType::kF32, Ptr<float>(weight), out.data,
                        out.dtype == DType::kF32, static_cast<int>(x.dim(0)),
                        static_cast<int>(x.dim(1)), eps};
  return Launched(cuda::LaunchRmsNorm(p, backend_->stream()), "RmsNorm");
}

Result<Tensor> CudaOps::Intermediate(DType dtype, int64_t rows, int64_t cols) {
  const size_t bytes = static_cast<size_t>(rows * cols) * DTypeSize(dtype);
  if (intermediate_.bytes() < bytes) {
    if (!intermediate_.empty()) retired_scratch_.push_back(std::move(intermediate_));
    TF_ASSIGN_OR_RETURN(intermediate_, backend_->Allocate(std::max<size_t>(bytes, 1 << 20)));
  }
  return Tensor(intermediate_.data(), dtype, {rows, cols});
}

Result<int*> CudaOps::Counters(DeviceBuffer* buffer, int64_t count) {
  const size_t bytes = static_cast<size_t>(count) * sizeof(int);
  if (buffer->bytes() < bytes) {
    if (!buffer->empty()) retired_scratch_.push_back(std::move(*buffer));
    TF_ASSIGN_OR_RETURN(*buffer, backend_->Allocate(std::max<size_t>(bytes, 4096)));
    TF_CUDA_RETURN_IF_ERROR(
        cudaMemsetAsync(buffer->data(), 0, buffer->bytes(), backend_->stream()));
  }
  return static_cast<int*>(buffer->data());
}

cuda::GemvParams CudaOps::GemvFor(const Tensor& x, const Tensor& w, const Tensor& bias,
                                  const Tensor& out, bool accumulate) {
  cuda::GemvParams g;
  g.output = accumulate ? cuda::GemvOutput::kAddF32
                        : (out.dtype == DType::kF32 ? cuda::GemvOutput::kStoreF32
                                                    : cuda::GemvOutput::kStoreBf16);
  g.x = Ptr(x);
  g.w = Ptr(w);
  g.bias = bias.empty() ? nullptr : Ptr<float>(bias);
  g.out = out.data;
  g.m = static_cast<int>(x.dim(0));
  g.n = static_cast<int>(w.dim(0));
  g.k = static_cast<int>(x.dim(1));
  return g;
}

// x (act or f32) @ w^T (+ bias) into out, or added into an f32 out.
Status CudaOps::Gemm(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
                     bool accumulate) {
  const bool out_f32 = out.dtype == DType::kF32;
  if (x.dtype == DType::kF32) {
    if (accumulate) return InvalidArgumentError("cuda: accumulating f32-input MatMul");
    cuda::MatMulF32Params p{Ptr<float>(x), Ptr(w), out.data, out_f32,
                            static_cast<int>(x.dim(0)), static_cast<int>(w.dim(0)),
                            static_cast<int>(x.dim(1))};
    TF_RETURN_IF_ERROR(Launched(cuda::LaunchMatMulF32(p, backend_->stream()), "MatMulF32"));
  } else {
    const cuda::GemvParams g = GemvFor(x, w, bias, out, accumulate);
    if (cuda::GemvSupports(g)) {  // decode-sized: bandwidth-bound, bias fused
      return Launched(cuda::LaunchGemv(g, backend_->stream()), "Gemv");
    }
    TF_RETURN_IF_ERROR(gemm_->Run(x.data, w.data, out.data, out_f32, x.dim(0), w.dim(0),
                                  x.dim(1), backend_->stream(), accumulate));
  }
  if (bias.empty()) return Status::Ok();
  cuda::AddBiasParams p{out.data, out_f32, Ptr<float>(bias), static_cast<int>(out.dim(0)),
                        static_cast<int>(out.dim(1))};
  return Launched(cuda::LaunchAddBias(p, backend_->stream()), "AddBias");
}

Status CudaOps::MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckMatMul(x, w, bias, out, kAct));
  TF_RETURN_IF_ERROR(RequireBf16(w, "weight"));
  return Gemm(x, w, bias, out, /*accumulate=*/false);
}

Status CudaOps::NormMatMul(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w,
                           const Tensor& bias, bool gated, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckNormMatMul(x, norm_weight, w, bias, gated, out, kAct));
  TF_RETURN_IF_ERROR(RequireBf16(w, "weight"));
  // The norm as its own kernel, then the projection (see gemv.cuh on why not fused).
  TF_ASSIGN_OR_RETURN(const Tensor normed, Intermediate(kAct, x.dim(0), x.dim(1)));
  TF_RETURN_IF_ERROR(RmsNorm(x, norm_weight, eps, normed));
  if (!gated) return Gemm(normed, w, bias, out, /*accumulate=*/false);
  const int64_t rows = x.dim(0), n = w.dim(0);
  // Decode-sized: silu(gate) * up in the GEMV's epilogue (one kernel and one round trip of
  // the [M, 2I] product fewer per layer).
  cuda::GemvParams g = GemvFor(normed, w, bias, out, /*accumulate=*/false);
  g.gated = true;
  g.n = static_cast<int>(n / 2);
  if (cuda::GemvSupports(g)) return Launched(cuda::LaunchGemv(g, backend_->stream()), "Gemv");
  // The [M, 2I] product in scratch, then silu(gate) * up into out: in slices of at most
  // kGatedRows rows, so that a long prefill chunk needs [1024, 2I] of scratch, not [M, 2I]
  // (the slices stay large GEMMs).
  constexpr int64_t kGatedRows = 1024;
  const int64_t slice = std::min(rows, kGatedRows);
  TF_ASSIGN_OR_RETURN(void* product, Scratch(static_cast<size_t>(slice * n) * DTypeSize(kAct)));
  for (int64_t r0 = 0; r0 < rows; r0 += slice) {
    const int64_t r = std::min(slice, rows - r0);
    const Tensor y(product, kAct, {r, n});
    TF_RETURN_IF_ERROR(Gemm(normed.Rows(r0, r), w, bias, y, /*accumulate=*/false));
    cuda::SiluMulParams sp{Ptr(y), Ptr(out.Rows(r0, r)), static_cast<int>(r),
                           static_cast<int>(n / 2)};
    TF_RETURN_IF_ERROR(Launched(cuda::LaunchSiluMul(sp, backend_->stream()), "SiluMul"));
  }
  return Status::Ok();
}

Status CudaOps::MatMulAdd(const Tensor& x, const Tensor& w, const Tensor& bias,
                          const Tensor& residual) {
  TF_RETURN_IF_ERROR(CheckMatMulAdd(x, w, bias, residual, kAct));
  TF_RETURN_IF_ERROR(RequireBf16(w, "weight"));
  return Gemm(x, w, bias, residual, /*accumulate=*/true);
}

Status CudaOps::ProjectionChain(const ProjectionStage* stages, int count) {
  // With TOKENFAB_CHAIN=1, single-row chains (batch-1 decode) stream as one kernel; anything
  // else runs stage by stage. Opt-in because the kernel has not yet run on a GPU (no device was
  // lent in the session that wrote it): docs/performance_notes.md, "Next", says how to check
  // and time it in one call. Read per call so that a test can turn it on.
  const char* enabled = std::getenv("TOKENFAB_CHAIN");
  cuda::ChainParams p;
  bool streamable = enabled != nullptr && std::strcmp(enabled, "1") == 0 && count > 0 &&
                    count <= cuda::kChainMaxStages;
  for (int i = 0; streamable && i < count; ++i) {
    const ProjectionStage& s = stages[i];
    const bool normed = !s.norm_weight.empty();
    if (normed) {
      TF_RETURN_IF_ERROR(CheckNormMatMul(s.x, s.norm_weight, s.w, s.bias, s.gated, s.out, kAct));
    } else if (s.accumulate) {
      TF_RETURN_IF_ERROR(CheckMatMulAdd(s.x, s.w, s.bias, s.out, kAct));
    } else {
      TF_RETURN_IF_ERROR(CheckMatMul(s.x, s.w, s.bias, s.out, kAct));
    }
    const DType want_x = normed ? DType::kF32 : kAct;
    if (s.x.dim(0) != 1 || s.x.dtype != want_x || s.w.dtype != DType::kBF16 ||
        (s.gated && !normed) || (s.accumulate && normed)) {
      streamable = false;
      break;
    }
    cuda::ChainStage& c = p.stages[i];
    c.x = s.x.data;
    c.norm_weight = normed ? Ptr<float>(s.norm_weight) : nullptr;
    c.eps = s.norm_eps;
    c.w = Ptr(s.w);
    c.bias = s.bias.empty() ? nullptr : Ptr<float>(s.bias);
    c.out = s.out.data;
    c.n = static_cast<int>(s.gated ? s.w.dim(0) / 2 : s.w.dim(0));
    c.k = static_cast<int>(s.w.dim(1));
    c.output = s.gated                      ? cuda::ChainOutput::kGatedBf16
               : s.accumulate               ? cuda::ChainOutput::kAddF32
               : s.out.dtype == DType::kF32 ? cuda::ChainOutput::kStoreF32
                                            : cuda::ChainOutput::kStoreBf16;
  }
  if (streamable) {
    p.num_stages = count;
    TF_ASSIGN_OR_RETURN(p.counters, Counters(&chain_counters_, cuda::kChainMaxStages + 1));
    streamable = cuda::ProjectionChainSupports(p, backend_->num_sms());
  }
  if (!streamable) return ComposeProjectionChain(*this, stages, count);
  return Launched(cuda::LaunchProjectionChain(p, backend_->num_sms(), backend_->stream()),
                  "ProjectionChain");
}

Status CudaOps::PrepareQkv(const QkvArgs& a, const AttentionMetadata& meta) {
  TF_RETURN_IF_ERROR(CheckPrepareQkv(a, meta, kAct));
  if (a.head_dim > cuda::kAttentionMaxHeadDim) {
    return InvalidArgumentError("cuda PrepareQkv: head_dim <= 256 supported");
  }
  cuda::PrepareQkvParams p;
  p.qkv = Ptr(a.qkv);
  p.q_norm = a.q_norm.empty() ? nullptr : Ptr<float>(a.q_norm);
  p.k_norm = a.k_norm.empty() ? nullptr : Ptr<float>(a.k_norm);
  p.inv_freq = Ptr<float>(a.inv_freq);
  p.positions = Ptr<int32_t>(meta.positions);
  p.slots = Ptr<int32_t>(meta.slot_mapping);
  p.q_out = Ptr(a.q_out);
  p.k_cache = Ptr(a.k_cache);
  p.v_cache = Ptr(a.v_cache);
  p.num_tokens = meta.num_tokens;
  p.num_q_heads = a.num_q_heads;
  p.num_kv_heads = a.num_kv_heads;
  p.head_dim = a.head_dim;
  p.num_slots = a.k_cache.dim(0) * a.k_cache.dim(1);
  p.eps = a.norm_eps;
  return Launched(cuda::LaunchPrepareQkv(p, backend_->stream()), "PrepareQkv");
}

Status CudaOps::Attention(const AttentionArgs& a, const AttentionMetadata& meta) {
  TF_RETURN_IF_ERROR(CheckAttention(a, meta, kAct));
  if (a.head_dim > cuda::kAttentionMaxHeadDim ||
      a.num_q_heads / a.num_kv_heads > cuda::kAttentionMaxGroup) {
    return InvalidArgumentError("cuda attention: head_dim <= 256 and Hq / Hkv <= 16 supported");
  }
  cuda::AttentionParams p{};
  p.q = Ptr(a.q);
  p.k_cache = Ptr(a.k_cache);
  p.v_cache = Ptr(a.v_cache);
  p.positions = Ptr<int32_t>(meta.positions);
  p.query_start = Ptr<int32_t>(meta.query_start);
  p.block_tables = Ptr<int32_t>(meta.block_tables);
  p.out = Ptr(a.out);
  p.num_tokens = meta.num_tokens;
  p.num_seqs = meta.num_seqs;
  p.num_q_heads = a.num_q_heads;
  p.num_kv_heads = a.num_kv_heads;
  p.head_dim = a.head_dim;
  p.block_size = meta.block_size;
  p.max_blocks_per_seq = meta.max_blocks_per_seq;
  p.num_blocks = static_cast<int>(a.k_cache.dim(0));
  p.sliding_window = a.sliding_window;
  p.scale = a.scale;
  const int span = a.sliding_window > 0 ? std::min(meta.max_seq_len, a.sliding_window)
                                        : meta.max_seq_len;
  // The partial softmaxes of `tokens` rows in `splits` splits (merged by a second kernel):
  // accumulators, then (max, sum) pairs, each 256-byte aligned.
  auto acc_bytes = [&](size_t rows) {
    return (rows * a.head_dim * sizeof(float) + 255) / 256 * 256;
  };
  auto split_bytes = [&](int64_t tokens, int splits) -> size_t {
    if (splits == 1) return 0;
    const size_t rows = static_cast<size_t>(tokens) * a.num_q_heads * splits;
    return acc_bytes(rows) + (rows * 2 * sizeof(float) + 255) / 256 * 256;
  };
  auto place_splits = [&](cuda::AttentionParams* q, int64_t tokens, char* base) {
    q->partial_acc = nullptr;
    q->partial_ml = nullptr;
    if (q->splits == 1) return;
    const size_t rows = static_cast<size_t>(tokens) * a.num_q_heads * q->splits;
    q->partial_acc = reinterpret_cast<float*>(base);
    q->partial_ml = reinterpret_cast<float*>(base + acc_bytes(rows));
  };
  // Decode tokens (and short chunks) go to the split-K kernels, which read each key once for
  // the whole GQA group.
  auto launch_decode = [&](cuda::AttentionParams q, char* scratch) -> Status {
    place_splits(&q, q.num_tokens, scratch);
    if (cuda::AttentionDecodeSupports(q)) {
      if (q.splits > 1) {
        TF_ASSIGN_OR_RETURN(q.split_counters,
                            Counters(&split_counters_, static_cast<int64_t>(q.num_tokens) *
                                                           a.num_kv_heads));
      }
      return Launched(cuda::LaunchAttentionDecode(q, backend_->stream()), "AttentionDecode");
    }
    return Launched(cuda::LaunchAttention(q, backend_->stream()), "Attention");
  };
  constexpr int kFlashMinQueries = 16;
  if (meta.max_query_len < kFlashMinQueries || !cuda::FlashPrefillSupports(p)) {
    p.splits = cuda::AttentionSplits(meta.num_tokens, a.num_kv_heads, span, backend_->num_sms());
    char* scratch = nullptr;
    if (p.splits > 1) {
      TF_ASSIGN_OR_RETURN(void* buffer, Scratch(split_bytes(meta.num_tokens, p.splits)));
      scratch = static_cast<char*>(buffer);
    }
    return launch_decode(p, scratch);
  }
  // Chunks of many queries go to the tensor-core kernel. In a mixed step the decode tokens
  // the batch leads with go to the decode kernel instead: as one-row query tiles of the
  // prefill kernel each would walk its whole context alone on one SM.
  const int decodes = std::clamp(meta.num_leading_decodes, 0, meta.num_seqs - 1);
  cuda::AttentionParams dec = p;
  dec.num_tokens = decodes;
  dec.splits = decodes > 0 ? cuda::AttentionSplits(decodes, a.num_kv_heads, span,
                                                   backend_->num_sms())
                           : 1;
  p.first_seq = decodes;
  p.first_token = decodes;  // each leading decode sequence has one row
  const cuda::FlashPrefillShape shape = cuda::FlashPrefillShapeFor(
      meta.max_query_len, a.num_q_heads, meta.num_seqs - decodes, span, backend_->num_sms());
  p.splits = shape.splits;
  const size_t dec_bytes = split_bytes(decodes, dec.splits);
  const size_t flash_bytes = split_bytes(meta.num_tokens, p.splits);  // rows by absolute index
  char* scratch = nullptr;
  if (dec_bytes + flash_bytes > 0) {
    TF_ASSIGN_OR_RETURN(void* buffer, Scratch(dec_bytes + flash_bytes));
    scratch = static_cast<char*>(buffer);
  }
  if (decodes > 0) TF_RETURN_IF_ERROR(launch_decode(dec, scratch));
  place_splits(&p, meta.num_tokens, scratch + dec_bytes);
  return Launched(cuda::LaunchFlashPrefill(p, shape.tile_rows, meta.max_query_len,
                                           backend_->stream()),
                  "FlashPrefill");
}

Status CudaOps::MoeRoute(const Tensor& logits, bool normalize, const Tensor& ids,
                         const Tensor& weights) {
  TF_RETURN_IF_ERROR(CheckMoeRoute(logits, ids, weights));
  if (logits.dtype != DType::kF32) return InvalidArgumentError("MoeRoute: logits must be f32");
  if (ids.dim(1) > 32 || logits.dim(1) > cuda::MoeMaxExperts()) {
    return InvalidArgumentError("cuda MoeRoute: top_k <= 32 and <= 1024 experts supported");
  }
  cuda::MoeRouteParams p{Ptr<float>(logits), Ptr<int32_t>(ids), Ptr<float>(weights),
                         static_cast<int>(logits.dim(0)), static_cast<int>(logits.dim(1)),
                         static_cast<int>(ids.dim(1)), normalize};
  return Launched(cuda::LaunchMoeRoute(p, backend_->stream()), "MoeRoute");
}

Status CudaOps::MoeExperts(const MoeArgs& a) {
  TF_RETURN_IF_ERROR(CheckMoeExperts(a, kAct));
  TF_RETURN_IF_ERROR(RequireBf16(a.gate_up, "expert weights"));
  cuda::MoeExpertsParams p;
  p.x = a.x.data;
  p.x_f32 = a.x.dtype == DType::kF32;
  p.ids = Ptr<int32_t>(a.expert_ids);
  p.weights = Ptr<float>(a.expert_weights);
  p.gate_up = Ptr(a.gate_up);
  p.down = Ptr(a.down);
  p.residual = Ptr<float>(a.residual);
  p.num_tokens = static_cast<int>(a.x.dim(0));
  p.top_k = static_cast<int>(a.expert_ids.dim(1));
  p.num_experts = static_cast<int>(a.gate_up.dim(0));
  p.hidden = static_cast<int>(a.x.dim(1));
  p.inter = static_cast<int>(a.gate_up.dim(1) / 2);
  TF_ASSIGN_OR_RETURN(p.scratch, Scratch(cuda::MoeScratchBytes(p.num_tokens, p.top_k,
                                                               p.num_experts, p.hidden, p.inter)));
  return Launched(cuda::LaunchMoeExperts(p, backend_->stream()), "MoeExperts");
}

Status CudaOps::MoeBlock(const MoeBlockArgs& a) {
  // Decode steps of one or two tokens: the whole block in three kernels instead of seven.
  if (a.residual.rank != 2 || a.residual.dim(0) > cuda::kMoeSmallMaxTokens) {
    return ComposeMoeBlock(*this, a);
  }
  TF_RETURN_IF_ERROR(CheckMoeBlock(a, kAct));
  for (const Tensor* w : {&a.router, &a.gate_up, &a.down}) {
    TF_RETURN_IF_ERROR(RequireBf16(*w, "MoE weights"));
  }
  cuda::MoeSmallBatchParams p;
  p.residual = Ptr<float>(a.residual);
  p.norm_weight = Ptr<float>(a.norm_weight);
  p.eps = a.norm_eps;
  p.router = Ptr(a.router);
  p.gate_up = Ptr(a.gate_up);
  p.down = Ptr(a.down);
  p.normed = Ptr<float>(a.normed);
  p.logits = Ptr<float>(a.logits);
  p.ids = Ptr<int32_t>(a.expert_ids);
  p.weights = Ptr<float>(a.expert_weights);
  p.num_tokens = static_cast<int>(a.residual.dim(0));
  p.hidden = static_cast<int>(a.residual.dim(1));
  p.inter = static_cast<int>(a.gate_up.dim(1) / 2);
  p.num_experts = static_cast<int>(a.gate_up.dim(0));
  p.top_k = static_cast<int>(a.expert_ids.dim(1));
  p.normalize = a.normalize;
  TF_ASSIGN_OR_RETURN(void* act,
                      Scratch(cuda::MoeSmallBatchActBytes(p.num_tokens, p.top_k, p.inter)));
  p.act = static_cast<float*>(act);
  TF_ASSIGN_OR_RETURN(p.ticket, Counters(&moe_ticket_, 1));
  if (!cuda::MoeSmallBatchSupports(p)) return ComposeMoeBlock(*this, a);
  return Launched(cuda::LaunchMoeSmallBatch(p, backend_->stream()), "MoeSmallBatch");
}

Status CudaOps::GatherRows(const Tensor& in, const Tensor& indices, const Tensor& out) {
  TF_RETURN_IF_ERROR(CheckGatherRows(in, indices, out));
  cuda::GatherRowsParams p{in.data, Ptr<int32_t>(indices), out.data, static_cast<int>(in.dim(0)),
                           static_cast<int>(out.dim(0)),
                           static_cast<int>(in.dim(1) * DTypeSize(in.dtype))};
  return Launched(cuda::LaunchGatherRows(p, backend_->stream()), "GatherRows");
}

Status CudaOps::Sample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                       const Tensor& logprobs) {
  TF_RETURN_IF_ERROR(CheckSample(logits, params, tokens, logprobs));
  cuda::SampleParams p{Ptr<float>(logits), static_cast<const DeviceSamplingParams*>(params.data),
                       Ptr<int32_t>(tokens), Ptr<float>(logprobs),
                       static_cast<int>(logits.dim(0)), static_cast<int>(logits.dim(1))};
  return Launched(cuda::LaunchSample(p, backend_->stream()), "Sample");
}

}  // namespace tokenfab
