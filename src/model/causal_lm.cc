#include "model/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "model/rope.h"

namespace tokenfab {
namespace {

size_t AlignUp(size_t n) { return (n + 255) / 256 * 256; }

// Lays tensors out back to back in one buffer: first pass sizes, second pass binds views.
class Arena {
 public:
  explicit Arena(void* base) : base_(static_cast<char*>(base)) {}
  Tensor Take(DType dtype, std::initializer_list<int64_t> dims) {
    Tensor t(base_ ? base_ + used_ : nullptr, dtype, dims);
    used_ += AlignUp(t.bytes());
    return t;
  }
  size_t used() const { return used_; }

 private:
  char* base_;
  size_t used_ = 0;
};

}  // namespace

Result<std::unique_ptr<CausalLm>> CausalLm::Create(ModelConfig config, ModelWeights weights,
                                                   Backend* backend) {
  TF_RETURN_IF_ERROR(config.Validate());
  if (static_cast<int64_t>(weights.layers.size()) != config.num_layers) {
    return InvalidArgumentError("weights do not match the config's layer count");
  }
  std::unique_ptr<CausalLm> lm(new CausalLm(std::move(config), std::move(weights), backend));
  const std::vector<float> inv_freq = ComputeRopeInvFreq(lm->config_);
  TF_ASSIGN_OR_RETURN(lm->inv_freq_buffer_, backend->Allocate(inv_freq.size() * sizeof(float)));
  lm->inv_freq_ =
      lm->inv_freq_buffer_.View(DType::kF32, {static_cast<int64_t>(inv_freq.size())});
  TF_RETURN_IF_ERROR(
      backend->CopyToDevice(lm->inv_freq_.data, inv_freq.data(), inv_freq.size() * sizeof(float)));
  TF_RETURN_IF_ERROR(backend->Synchronize());
  return lm;
}

CausalLm::CausalLm(ModelConfig config, ModelWeights weights, Backend* backend)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      backend_(backend),
      act_(backend->activation_dtype()) {
  mlp_width_ = config_.intermediate_size;
  if (config_.num_experts > 0) mlp_width_ = std::max(mlp_width_, config_.moe_intermediate_size);
}

Status CausalLm::Reserve(int32_t max_tokens, int32_t max_logit_rows) {
  max_tokens = std::max<int32_t>(max_tokens, 1);
  max_logit_rows = std::max<int32_t>(max_logit_rows, 1);
  if (max_tokens <= capacity_tokens_ && max_logit_rows <= capacity_rows_) return Status::Ok();
  max_tokens = std::max(max_tokens, capacity_tokens_);
  max_logit_rows = std::max(max_logit_rows, capacity_rows_);
  const ModelConfig& c = config_;
  const int64_t t = max_tokens, r = max_logit_rows, h = c.hidden_size;
  const int64_t k = std::max<int64_t>(c.num_experts_per_tok, 1);
  const int64_t e = std::max<int64_t>(c.num_experts, 1);
  auto bind = [&](Arena& arena) {
    residual_ = arena.Take(DType::kF32, {t, h});
    normed_f32_ = arena.Take(DType::kF32, {t, h});
    normed_ = arena.Take(act_, {t, h});
    qkv_ = arena.Take(act_, {t, c.q_size() + 2 * c.kv_size()});
    q_ = arena.Take(act_, {t, c.q_size()});
    attn_ = arena.Take(act_, {t, c.q_size()});
    delta_ = arena.Take(act_, {t, h});
    mlp_in_ = arena.Take(act_, {t, 2 * mlp_width_});
    mlp_act_ = arena.Take(act_, {t, mlp_width_});
    router_logits_ = arena.Take(DType::kF32, {t, e});
    route_ids_ = arena.Take(DType::kI32, {t, k});
    route_weights_ = arena.Take(DType::kF32, {t, k});
    token_ids_ = arena.Take(DType::kI32, {t});
    logit_rows_ = arena.Take(DType::kI32, {r});
    row_hidden_ = arena.Take(act_, {r, h});
    logits_ = arena.Take(DType::kF32, {r, c.vocab_size});
  };
  Arena sizing(nullptr);
  bind(sizing);
  TF_ASSIGN_OR_RETURN(workspace_, backend_->Allocate(sizing.used()));
  Arena arena(workspace_.data());
  bind(arena);
  capacity_tokens_ = max_tokens;
  capacity_rows_ = max_logit_rows;
  return Status::Ok();
}

Status CausalLm::ValidateBatch(const ForwardBatch& b, const KvCacheTensors& kv) const {
  const int32_t t = b.num_tokens(), s = b.num_seqs();
  if (t == 0 || s == 0) return InvalidArgumentError("empty batch");
  if (b.positions.size() != static_cast<size_t>(t) ||
      b.slot_mapping.size() != static_cast<size_t>(t) ||
      b.query_start.size() != static_cast<size_t>(s) + 1 || b.query_start.front() != 0 ||
      b.query_start.back() != t || b.max_blocks_per_seq <= 0 ||
      b.block_tables.size() != static_cast<size_t>(s) * b.max_blocks_per_seq) {
    return InvalidArgumentError("inconsistent batch layout");
  }
  if (static_cast<int64_t>(kv.k.size()) != config_.num_layers ||
      static_cast<int64_t>(kv.v.size()) != config_.num_layers) {
    return InvalidArgumentError("KV cache does not match the model's layer count");
  }
  for (int32_t id : b.token_ids) {
    if (id < 0 || id >= config_.vocab_size) {
      return InvalidArgumentError("token id " + std::to_string(id) + " is out of range [0, " +
                                  std::to_string(config_.vocab_size) + ")");
    }
  }
  const int64_t num_slots = static_cast<int64_t>(kv.num_blocks) * kv.block_size;
  for (int32_t slot : b.slot_mapping) {
    if (slot < 0 || slot >= num_slots) return InvalidArgumentError("slot outside the KV cache");
  }
  for (int32_t block : b.block_tables) {
    if (block >= kv.num_blocks) return InvalidArgumentError("block id outside the KV cache");
  }
  for (int32_t i = 0; i < s; ++i) {
    const int32_t q_len = b.query_start[i + 1] - b.query_start[i];
    if (q_len < 0 || b.seq_lens[i] < q_len ||
        b.seq_lens[i] > static_cast<int64_t>(b.max_blocks_per_seq) * kv.block_size) {
      return InvalidArgumentError("sequence " + std::to_string(i) + " has inconsistent lengths");
    }
    for (int32_t row = b.query_start[i]; row < b.query_start[i + 1]; ++row) {
      if (b.positions[row] < 0 || b.positions[row] >= b.seq_lens[i]) {
        return InvalidArgumentError("position outside its sequence");
      }
    }
  }
  for (int32_t row : b.logit_rows) {
    if (row < 0 || row >= t) return InvalidArgumentError("logit row outside the batch");
  }
  return Status::Ok();
}

Status CausalLm::UploadMetadata(const ForwardBatch& b, AttentionMetadata* meta) {
  const int32_t t = b.num_tokens(), s = b.num_seqs();
  // One upload for all metadata: positions, slots, query_start, seq_lens, block tables.
  std::vector<int32_t>& host = metadata_host_;
  host.clear();
  host.insert(host.end(), b.positions.begin(), b.positions.end());
  host.insert(host.end(), b.slot_mapping.begin(), b.slot_mapping.end());
  host.insert(host.end(), b.query_start.begin(), b.query_start.end());
  host.insert(host.end(), b.seq_lens.begin(), b.seq_lens.end());
  host.insert(host.end(), b.block_tables.begin(), b.block_tables.end());
  const size_t bytes = host.size() * sizeof(int32_t);
  if (metadata_buffer_.bytes() < bytes) {
    metadata_buffer_.Reset();
    TF_ASSIGN_OR_RETURN(metadata_buffer_, backend_->Allocate(std::max<size_t>(bytes * 2, 4096)));
  }
  TF_RETURN_IF_ERROR(backend_->CopyToDevice(metadata_buffer_.data(), host.data(), bytes));
  int32_t* base = static_cast<int32_t*>(metadata_buffer_.data());
  meta->num_seqs = s;
  meta->num_tokens = t;
  meta->max_query_len = 0;
  for (int32_t i = 0; i < s; ++i) {
    meta->max_query_len = std::max(meta->max_query_len, b.query_start[i + 1] - b.query_start[i]);
  }
  meta->max_seq_len = *std::max_element(b.seq_lens.begin(), b.seq_lens.end());
  meta->max_blocks_per_seq = b.max_blocks_per_seq;
  meta->positions = Tensor(base, DType::kI32, {t});
  meta->slot_mapping = Tensor(base + t, DType::kI32, {t});
  meta->query_start = Tensor(base + 2 * t, DType::kI32, {s + 1});
  meta->seq_lens = Tensor(base + 2 * t + s + 1, DType::kI32, {s});
  meta->block_tables = Tensor(base + 2 * t + 2 * s + 1, DType::kI32, {s, b.max_blocks_per_seq});
  return Status::Ok();
}

Status CausalLm::RunLayer(int l, const KvCacheTensors& kv, const AttentionMetadata& meta,
                          int32_t t) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[l];
  Ops& ops = backend_->ops();
  const float eps = static_cast<float>(c.rms_norm_eps);
  const Tensor residual = residual_.Rows(0, t), normed = normed_.Rows(0, t);
  const Tensor delta = delta_.Rows(0, t);

  if (l == 0) {
    TF_RETURN_IF_ERROR(ops.RmsNorm(residual, w.input_norm, eps, normed));
  } else {
    TF_RETURN_IF_ERROR(ops.AddRmsNorm(residual, delta, w.input_norm, eps, normed));
  }

  // Attention block.
  const Tensor qkv = qkv_.Rows(0, t), q = q_.Rows(0, t), attn = attn_.Rows(0, t);
  TF_RETURN_IF_ERROR(ops.MatMul(normed, w.qkv, w.qkv_bias, qkv));
  QkvArgs qa;
  qa.qkv = qkv;
  qa.q_norm = w.q_norm;
  qa.k_norm = w.k_norm;
  qa.norm_eps = eps;
  qa.inv_freq = inv_freq_;
  qa.q_out = q;
  qa.k_cache = kv.k[l];
  qa.v_cache = kv.v[l];
  qa.num_q_heads = static_cast<int>(c.num_heads);
  qa.num_kv_heads = static_cast<int>(c.num_kv_heads);
  qa.head_dim = static_cast<int>(c.head_dim);
  TF_RETURN_IF_ERROR(ops.PrepareQkv(qa, meta));
  AttentionArgs aa;
  aa.q = q;
  aa.k_cache = kv.k[l];
  aa.v_cache = kv.v[l];
  aa.out = attn;
  aa.num_q_heads = qa.num_q_heads;
  aa.num_kv_heads = qa.num_kv_heads;
  aa.head_dim = qa.head_dim;
  aa.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  aa.sliding_window = static_cast<int>(c.sliding_window[l]);
  TF_RETURN_IF_ERROR(ops.Attention(aa, meta));
  TF_RETURN_IF_ERROR(ops.MatMul(attn, w.o, w.o_bias, delta));
  // MLP block; its output lands in delta, added to the residual by the next norm.
  if (c.IsMoeLayer(l)) {
    const int64_t k = c.num_experts_per_tok;
    const Tensor normed_f32 = normed_f32_.Rows(0, t);
    const Tensor logits = router_logits_.Rows(0, t).Reshape({t, c.num_experts});
    const Tensor ids = route_ids_.Rows(0, t).Reshape({t, k});
    const Tensor weights = route_weights_.Rows(0, t).Reshape({t, k});
    TF_RETURN_IF_ERROR(ops.AddRmsNorm(residual, delta, w.post_attention_norm, eps, normed_f32));
    TF_RETURN_IF_ERROR(ops.MatMul(normed_f32, w.router, Tensor(), logits));
    TF_RETURN_IF_ERROR(ops.MoeRoute(logits, c.norm_topk_prob, ids, weights));
    MoeArgs ma;
    ma.x = normed_f32;
    ma.expert_ids = ids;
    ma.expert_weights = weights;
    ma.gate_up = w.experts_gate_up;
    ma.down = w.experts_down;
    ma.out = delta;
    return ops.MoeExperts(ma);
  }
  TF_RETURN_IF_ERROR(ops.AddRmsNorm(residual, delta, w.post_attention_norm, eps, normed));
  const int64_t inter = c.intermediate_size;
  const Tensor mlp_in = Tensor(mlp_in_.data, act_, {t, 2 * inter});
  const Tensor mlp_act = Tensor(mlp_act_.data, act_, {t, inter});
  TF_RETURN_IF_ERROR(ops.MatMul(normed, w.gate_up, w.gate_up_bias, mlp_in));
  TF_RETURN_IF_ERROR(ops.SiluMul(mlp_in, mlp_act));
  return ops.MatMul(mlp_act, w.down, w.down_bias, delta);
}

Status CausalLm::Forward(const ForwardBatch& batch, const KvCacheTensors& kv,
                         std::vector<float>* logits) {
  TF_RETURN_IF_ERROR(ValidateBatch(batch, kv));
  const int32_t t = batch.num_tokens();
  const int32_t r = static_cast<int32_t>(batch.logit_rows.size());
  TF_RETURN_IF_ERROR(Reserve(t, r));
  AttentionMetadata meta;
  meta.block_size = kv.block_size;
  TF_RETURN_IF_ERROR(UploadMetadata(batch, &meta));
  Ops& ops = backend_->ops();

  const Tensor ids = token_ids_.Rows(0, t);
  TF_RETURN_IF_ERROR(backend_->CopyToDevice(ids.data, batch.token_ids.data(), t * sizeof(int32_t)));
  TF_RETURN_IF_ERROR(ops.Embedding(ids, weights_.embed, residual_.Rows(0, t)));
  for (int l = 0; l < config_.num_layers; ++l) TF_RETURN_IF_ERROR(RunLayer(l, kv, meta, t));
  TF_RETURN_IF_ERROR(ops.AddRmsNorm(residual_.Rows(0, t), delta_.Rows(0, t), weights_.final_norm,
                                    static_cast<float>(config_.rms_norm_eps),
                                    normed_.Rows(0, t)));
  logits->resize(static_cast<size_t>(r) * config_.vocab_size);
  if (r == 0) return backend_->Synchronize();
  const Tensor rows = logit_rows_.Rows(0, r);
  TF_RETURN_IF_ERROR(
      backend_->CopyToDevice(rows.data, batch.logit_rows.data(), r * sizeof(int32_t)));
  TF_RETURN_IF_ERROR(ops.GatherRows(normed_.Rows(0, t), rows, row_hidden_.Rows(0, r)));
  const Tensor out = logits_.Rows(0, r);
  TF_RETURN_IF_ERROR(ops.MatMul(row_hidden_.Rows(0, r), weights_.lm_head, Tensor(), out));
  TF_RETURN_IF_ERROR(backend_->CopyToHost(logits->data(), out.data, out.bytes()));
  return backend_->Synchronize();
}

}  // namespace tokenfab
