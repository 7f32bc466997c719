#include "model/causal_lm.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
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
  lm->graphs_enabled_ = backend->SupportsGraphs() && std::getenv("TOKENFAB_NO_GRAPHS") == nullptr;
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
    qkv_ = arena.Take(act_, {t, c.q_size() + 2 * c.kv_size()});
    q_ = arena.Take(act_, {t, c.q_size()});
    attn_ = arena.Take(act_, {t, c.q_size()});
    mlp_in_ = arena.Take(act_, {t, mlp_width_});
    router_logits_ = arena.Take(DType::kF32, {t, e});
    route_ids_ = arena.Take(DType::kI32, {t, k});
    route_weights_ = arena.Take(DType::kF32, {t, k});
    row_hidden_ = arena.Take(DType::kF32, {r, h});
    logits_ = arena.Take(DType::kF32, {r, c.vocab_size});
    sampled_tokens_ = arena.Take(DType::kI32, {r});
    sampled_logprobs_ = arena.Take(DType::kF32, {r});
  };
  Arena sizing(nullptr);
  bind(sizing);
  // Captured graphs point into the old workspace: they are dropped and captured again.
  graphs_.clear();
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

Status CausalLm::Upload(const ForwardBatch& b, std::span<const DeviceSamplingParams> sampling,
                        int32_t seqs, int32_t blocks_per_seq, bool pad, DeviceBuffer* buffer,
                        BatchViews* v) {
  const int32_t real_t = b.num_tokens(), real_s = b.num_seqs();
  const int32_t t = pad ? seqs : real_t;
  const int32_t rows = pad ? seqs : static_cast<int32_t>(b.logit_rows.size());
  // Layout: ids[T] positions[T] slots[T] query_start[S+1] seq_lens[S] tables[S*B] rows[R],
  // then the sampling parameters at an 8-byte boundary.
  const size_t ints = 3 * static_cast<size_t>(t) + 2 * seqs + 1 +
                      static_cast<size_t>(seqs) * blocks_per_seq + rows;
  const size_t params_offset = (ints * sizeof(int32_t) + 7) / 8 * 8;
  const bool with_sampling = !sampling.empty() || pad;
  const size_t bytes =
      params_offset + (with_sampling ? rows * sizeof(DeviceSamplingParams) : 0);
  metadata_host_.assign(bytes, 0);
  int32_t* p = reinterpret_cast<int32_t*>(metadata_host_.data());
  int32_t* ids = p;
  int32_t* positions = ids + t;
  int32_t* slots = positions + t;
  int32_t* query_start = slots + t;
  int32_t* seq_lens = query_start + seqs + 1;
  int32_t* tables = seq_lens + seqs;
  int32_t* logit_rows = tables + static_cast<size_t>(seqs) * blocks_per_seq;
  std::copy(b.token_ids.begin(), b.token_ids.end(), ids);
  std::copy(b.positions.begin(), b.positions.end(), positions);
  std::copy(b.slot_mapping.begin(), b.slot_mapping.end(), slots);
  std::copy(b.query_start.begin(), b.query_start.end(), query_start);
  std::copy(b.seq_lens.begin(), b.seq_lens.end(), seq_lens);
  std::fill(tables, tables + static_cast<size_t>(seqs) * blocks_per_seq, -1);
  for (int32_t i = 0; i < real_s; ++i) {
    std::copy_n(b.block_tables.begin() + static_cast<size_t>(i) * b.max_blocks_per_seq,
                std::min(b.max_blocks_per_seq, blocks_per_seq),
                tables + static_cast<size_t>(i) * blocks_per_seq);
  }
  if (pad) {
    // Padding rows are one-token sequences that write no K/V (slot -1) and read none (no
    // blocks); their outputs are computed and ignored.
    for (int32_t i = real_t; i < t; ++i) {
      ids[i] = 0;
      positions[i] = 0;
      slots[i] = -1;
      query_start[i + 1] = i + 1;
      seq_lens[i] = 1;
    }
    for (int32_t i = 0; i < rows; ++i) logit_rows[i] = i;
  } else {
    std::copy(b.logit_rows.begin(), b.logit_rows.end(), logit_rows);
  }
  if (with_sampling) {
    auto* params = reinterpret_cast<DeviceSamplingParams*>(metadata_host_.data() + params_offset);
    std::copy(sampling.begin(), sampling.end(), params);  // the rest stay greedy
  }
  if (buffer->bytes() < bytes) {
    if (buffer == &graph_buffer_ && !graphs_.empty()) {
      return InternalError("graph input buffer too small");  // sized for the largest graph
    }
    buffer->Reset();
    TF_ASSIGN_OR_RETURN(*buffer, backend_->Allocate(std::max<size_t>(bytes * 2, 4096)));
  }
  TF_RETURN_IF_ERROR(backend_->CopyToDevice(buffer->data(), metadata_host_.data(), bytes));

  char* base = static_cast<char*>(buffer->data());
  auto view = [&](int32_t* host_ptr, int64_t n) {
    return Tensor(base + (reinterpret_cast<char*>(host_ptr) -
                          reinterpret_cast<char*>(metadata_host_.data())),
                  DType::kI32, {n});
  };
  AttentionMetadata& meta = v->meta;
  meta.num_seqs = seqs;
  meta.num_tokens = t;
  meta.max_query_len = 0;
  for (int32_t i = 0; i < real_s; ++i) {
    meta.max_query_len = std::max(meta.max_query_len, b.query_start[i + 1] - b.query_start[i]);
  }
  meta.max_query_len = std::max(meta.max_query_len, 1);
  // Padding rows are one-token sequences too.
  meta.num_leading_decodes = pad ? seqs : CountLeadingDecodes(b.query_start);
  // Graphs are replayed for any context that fits their block tables: plan for the widest.
  meta.max_seq_len = pad ? blocks_per_seq * meta.block_size
                         : *std::max_element(b.seq_lens.begin(), b.seq_lens.end());
  meta.max_blocks_per_seq = blocks_per_seq;
  meta.positions = view(positions, t);
  meta.slot_mapping = view(slots, t);
  meta.query_start = view(query_start, seqs + 1);
  meta.seq_lens = view(seq_lens, seqs);
  meta.block_tables = view(tables, static_cast<int64_t>(seqs) * blocks_per_seq)
                          .Reshape({seqs, blocks_per_seq});
  v->token_ids = view(ids, t);
  v->logit_rows = view(logit_rows, rows);
  v->num_rows = rows;
  v->sampling = with_sampling
                    ? Tensor(base + params_offset, DType::kU8,
                             {static_cast<int64_t>(rows * sizeof(DeviceSamplingParams))})
                    : Tensor();
  return Status::Ok();
}

ProjectionStage CausalLm::QkvStage(int l, int32_t t) const {
  const LayerWeights& w = weights_.layers[l];
  ProjectionStage s;
  s.x = residual_.Rows(0, t);
  s.norm_weight = w.input_norm;
  s.norm_eps = static_cast<float>(config_.rms_norm_eps);
  s.w = w.qkv;
  s.bias = w.qkv_bias;
  s.out = qkv_.Rows(0, t);
  return s;
}

Status CausalLm::RunLayer(int l, const KvCacheTensors& kv, const AttentionMetadata& meta, int32_t t,
                          bool qkv_ready, bool* next_qkv_ready) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[l];
  Ops& ops = backend_->ops();
  const float eps = static_cast<float>(c.rms_norm_eps);
  // The residual stream (f32) is read through each block's norm and each block adds its
  // output back into it.
  const Tensor residual = residual_.Rows(0, t);
  *next_qkv_ready = false;

  // Attention block.
  const Tensor qkv = qkv_.Rows(0, t), q = q_.Rows(0, t), attn = attn_.Rows(0, t);
  if (!qkv_ready) {
    const ProjectionStage input = QkvStage(l, t);
    TF_RETURN_IF_ERROR(ops.ProjectionChain(&input, 1));
  }
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

  // MLP block.
  if (c.IsMoeLayer(l)) {
    TF_RETURN_IF_ERROR(ops.MatMulAdd(attn, w.o, w.o_bias, residual));
    const int64_t k = c.num_experts_per_tok;
    MoeBlockArgs ma;
    ma.residual = residual;
    ma.norm_weight = w.post_attention_norm;
    ma.norm_eps = eps;
    ma.router = w.router;
    ma.normalize = c.norm_topk_prob;
    ma.gate_up = w.experts_gate_up;
    ma.down = w.experts_down;
    ma.normed = normed_f32_.Rows(0, t);
    ma.logits = router_logits_.Rows(0, t).Reshape({t, c.num_experts});
    ma.expert_ids = route_ids_.Rows(0, t).Reshape({t, k});
    ma.expert_weights = route_weights_.Rows(0, t).Reshape({t, k});
    return ops.MoeBlock(ma);
  }
  // The output projection, the MLP (silu(gate) * up into mlp_in, then down) and the next
  // layer's input projection: four projections with nothing but their inputs between them.
  const int64_t inter = c.intermediate_size;
  const Tensor mlp_in = Tensor(mlp_in_.data, act_, {t, inter});
  std::array<ProjectionStage, 4> chain;
  chain[0].x = attn;
  chain[0].w = w.o;
  chain[0].bias = w.o_bias;
  chain[0].accumulate = true;
  chain[0].out = residual;
  chain[1].x = residual;
  chain[1].norm_weight = w.post_attention_norm;
  chain[1].norm_eps = eps;
  chain[1].w = w.gate_up;
  chain[1].bias = w.gate_up_bias;
  chain[1].gated = true;
  chain[1].out = mlp_in;
  chain[2].x = mlp_in;
  chain[2].w = w.down;
  chain[2].bias = w.down_bias;
  chain[2].accumulate = true;
  chain[2].out = residual;
  int stages = 3;
  if (l + 1 < c.num_layers) {
    chain[stages++] = QkvStage(l + 1, t);
    *next_qkv_ready = true;
  }
  return ops.ProjectionChain(chain.data(), stages);
}

Status CausalLm::RunBody(const BatchViews& v, const KvCacheTensors& kv) {
  Ops& ops = backend_->ops();
  const int32_t t = v.meta.num_tokens, r = v.num_rows;
  TF_RETURN_IF_ERROR(ops.Embedding(v.token_ids, weights_.embed, residual_.Rows(0, t)));
  bool qkv_ready = false;
  for (int l = 0; l < config_.num_layers; ++l) {
    TF_RETURN_IF_ERROR(RunLayer(l, kv, v.meta, t, qkv_ready, &qkv_ready));
  }
  if (r == 0) return Status::Ok();
  // Only the rows whose logits are wanted go through the final norm and lm_head.
  TF_RETURN_IF_ERROR(ops.GatherRows(residual_.Rows(0, t), v.logit_rows, row_hidden_.Rows(0, r)));
  ProjectionStage head;  // the final norm and lm_head (one streaming kernel for one row)
  head.x = row_hidden_.Rows(0, r);
  head.norm_weight = weights_.final_norm;
  head.norm_eps = static_cast<float>(config_.rms_norm_eps);
  head.w = weights_.lm_head;
  head.out = logits_.Rows(0, r);
  TF_RETURN_IF_ERROR(ops.ProjectionChain(&head, 1));
  if (v.sampling.empty()) return Status::Ok();
  return ops.Sample(logits_.Rows(0, r), v.sampling, sampled_tokens_.Rows(0, r),
                    sampled_logprobs_.Rows(0, r));
}

Status CausalLm::CopyOutputs(const BatchViews& v, int32_t rows, const ForwardOutputs& out) {
  if (out.logits != nullptr && out.logit_rows_to_host.empty()) {
    out.logits->resize(static_cast<size_t>(rows) * config_.vocab_size);
    TF_RETURN_IF_ERROR(backend_->CopyToHost(out.logits->data(), logits_.data,
                                            out.logits->size() * sizeof(float)));
  } else if (out.logits != nullptr) {
    // A few rows of a large batch (those sampled on the host): one copy per run of
    // consecutive rows rather than the whole [rows, vocab].
    const std::span<const int32_t> want = out.logit_rows_to_host;
    const size_t row_bytes = static_cast<size_t>(config_.vocab_size) * sizeof(float);
    out.logits->resize(want.size() * static_cast<size_t>(config_.vocab_size));
    for (size_t i = 0; i < want.size();) {
      size_t run = 1;
      while (i + run < want.size() && want[i + run] == want[i] + static_cast<int32_t>(run)) ++run;
      TF_RETURN_IF_ERROR(backend_->CopyToHost(
          out.logits->data() + i * config_.vocab_size,
          static_cast<const char*>(logits_.data) + static_cast<size_t>(want[i]) * row_bytes,
          run * row_bytes));
      i += run;
    }
  }
  if (!out.sampling.empty() && !v.sampling.empty()) {
    if (out.tokens != nullptr) {
      out.tokens->resize(rows);
      TF_RETURN_IF_ERROR(
          backend_->CopyToHost(out.tokens->data(), sampled_tokens_.data, rows * sizeof(int32_t)));
    }
    if (out.token_logprobs != nullptr) {
      out.token_logprobs->resize(rows);
      TF_RETURN_IF_ERROR(backend_->CopyToHost(out.token_logprobs->data(), sampled_logprobs_.data,
                                              rows * sizeof(float)));
    }
  }
  return backend_->Synchronize();
}

namespace {
// Decode steps are padded up to one of these sequence counts and replayed from its graph.
constexpr int32_t kGraphBatchSizes[] = {1,  2,  4,   8,   16,  24,  32, 48,
                                        64, 96, 128, 160, 192, 224, 256};
constexpr int32_t kMaxGraphSeqs = kGraphBatchSizes[std::size(kGraphBatchSizes) - 1];
}  // namespace

std::span<const int32_t> CausalLm::GraphBatchSizes() { return kGraphBatchSizes; }

bool CausalLm::GraphEligible(const ForwardBatch& b, const ForwardOutputs& out) const {
  if (!graphs_enabled_ || b.num_seqs() > kMaxGraphSeqs || b.num_tokens() != b.num_seqs()) {
    return false;
  }
  if (!out.sampling.empty() && out.sampling.size() != static_cast<size_t>(b.num_seqs())) {
    return false;
  }
  if (b.logit_rows.size() != static_cast<size_t>(b.num_seqs())) return false;
  for (int32_t i = 0; i < b.num_seqs(); ++i) {
    if (b.logit_rows[i] != i) return false;
  }
  return b.max_blocks_per_seq <= graph_max_blocks_ || graph_max_blocks_ == 0;
}

Status CausalLm::ForwardGraph(const ForwardBatch& b, const KvCacheTensors& kv,
                              const ForwardOutputs& out) {
  if (graph_max_blocks_ == 0) {  // first use: size everything for the largest graph
    const int64_t max_len = config_.max_position_embeddings > 0
                                ? config_.max_position_embeddings
                                : int64_t{8192};
    const int64_t needed = std::max<int64_t>((max_len + kv.block_size - 1) / kv.block_size,
                                             b.max_blocks_per_seq);
    graph_max_blocks_ = 16;
    while (graph_max_blocks_ < needed) graph_max_blocks_ *= 2;
    constexpr size_t kSeqs = kMaxGraphSeqs;
    TF_RETURN_IF_ERROR(Reserve(std::max(capacity_tokens_, kMaxGraphSeqs),
                               std::max(capacity_rows_, kMaxGraphSeqs)));
    const size_t bytes =
        (3 * kSeqs + 2 * kSeqs + 1 + kSeqs * static_cast<size_t>(graph_max_blocks_) + kSeqs) *
            sizeof(int32_t) +
        8 + kSeqs * sizeof(DeviceSamplingParams);
    TF_ASSIGN_OR_RETURN(graph_buffer_, backend_->Allocate(bytes));
  }
  int32_t seqs = kMaxGraphSeqs;
  for (int32_t bucket : kGraphBatchSizes) {
    if (bucket >= b.num_seqs()) {
      seqs = bucket;
      break;
    }
  }
  int32_t blocks = 16;
  while (blocks < b.max_blocks_per_seq) blocks *= 2;
  BatchViews v;
  v.meta.block_size = kv.block_size;
  TF_RETURN_IF_ERROR(Upload(b, out.sampling, seqs, blocks, /*pad=*/true, &graph_buffer_, &v));
  const auto key = std::make_pair(seqs, blocks);
  const auto it = graphs_.find(key);
  if (it != graphs_.end()) {
    TF_RETURN_IF_ERROR(backend_->LaunchGraph(it->second));
  } else {
    // Run once for real (this step's results, and every lazily sized buffer at its final
    // size), then record the same launches.
    TF_RETURN_IF_ERROR(RunBody(v, kv));
    TF_RETURN_IF_ERROR(backend_->Synchronize());
    TF_RETURN_IF_ERROR(backend_->BeginGraphCapture());
    const Status body = RunBody(v, kv);
    auto graph = backend_->EndGraphCapture();
    TF_RETURN_IF_ERROR(body);
    TF_RETURN_IF_ERROR(graph.status());
    graphs_[key] = *graph;
  }
  return CopyOutputs(v, b.num_seqs(), out);
}

Status CausalLm::Forward(const ForwardBatch& batch, const KvCacheTensors& kv,
                         const ForwardOutputs& out) {
  TF_RETURN_IF_ERROR(ValidateBatch(batch, kv));
  if (!out.sampling.empty() && out.sampling.size() != batch.logit_rows.size()) {
    return InvalidArgumentError("one set of sampling parameters per logit row is needed");
  }
  for (const int32_t row : out.logit_rows_to_host) {
    if (row < 0 || static_cast<size_t>(row) >= batch.logit_rows.size()) {
      return InvalidArgumentError("logit row " + std::to_string(row) +
                                  " to copy is outside the batch's logit rows");
    }
  }
  if (GraphEligible(batch, out)) return ForwardGraph(batch, kv, out);
  const int32_t t = batch.num_tokens();
  const int32_t r = static_cast<int32_t>(batch.logit_rows.size());
  TF_RETURN_IF_ERROR(Reserve(t, r));
  BatchViews v;
  v.meta.block_size = kv.block_size;
  TF_RETURN_IF_ERROR(Upload(batch, out.sampling, batch.num_seqs(), batch.max_blocks_per_seq,
                            /*pad=*/false, &metadata_buffer_, &v));
  TF_RETURN_IF_ERROR(RunBody(v, kv));
  return CopyOutputs(v, r, out);
}

Status CausalLm::Forward(const ForwardBatch& batch, const KvCacheTensors& kv,
                         std::vector<float>* logits) {
  ForwardOutputs out;
  out.logits = logits;
  return Forward(batch, kv, out);
}

}  // namespace tokenfab
