// CausalLm: the decoder-only transformer forward pass of every supported architecture, written
// once over backend Ops. Architecture differences are data (biases present, q/k norm, MoE
// layers, sliding windows), not code paths per model.
//
// Forward runs one ragged batch: embeds the new tokens, writes their K/V into the paged cache,
// attends over each sequence's cache, and returns next-token logits for the requested rows.
// Thread-safety: one thread calls Forward at a time (the engine's owner thread).
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/kv_cache_tensors.h"
#include "model/forward_batch.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace tokenfab {

class CausalLm {
 public:
  static Result<std::unique_ptr<CausalLm>> Create(ModelConfig config, ModelWeights weights,
                                                  Backend* backend);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  Backend& backend() { return *backend_; }

  // Sizes the activation workspace for batches of up to `max_tokens` tokens and
  // `max_logit_rows` logit rows, so that later Forward calls within it allocate nothing.
  Status Reserve(int32_t max_tokens, int32_t max_logit_rows);

  // `logits` receives [batch.logit_rows.size(), vocab_size] f32, row-major.
  // InvalidArgument for an inconsistent batch or a token id outside the vocabulary.
  Status Forward(const ForwardBatch& batch, const KvCacheTensors& kv, std::vector<float>* logits);

 private:
  CausalLm(ModelConfig config, ModelWeights weights, Backend* backend);
  Status ValidateBatch(const ForwardBatch& batch, const KvCacheTensors& kv) const;
  Status UploadMetadata(const ForwardBatch& batch, AttentionMetadata* meta);
  Status RunLayer(int layer, const KvCacheTensors& kv, const AttentionMetadata& meta, int32_t t);

  ModelConfig config_;
  ModelWeights weights_;
  Backend* backend_;
  DType act_;
  int64_t mlp_width_;  // widest MLP intermediate over dense and expert layers

  // Workspace, sized by Reserve.
  int32_t capacity_tokens_ = 0;
  int32_t capacity_rows_ = 0;
  DeviceBuffer workspace_;
  Tensor residual_;     // f32 [T, H] on every backend: the residual stream
  Tensor normed_f32_;   // f32 [T, H]: MoE layers' normed input, read by router and experts
  Tensor normed_, qkv_, q_, attn_, delta_, mlp_in_, mlp_act_;
  Tensor router_logits_, route_ids_, route_weights_, token_ids_, logit_rows_, row_hidden_,
      logits_;
  DeviceBuffer inv_freq_buffer_;
  Tensor inv_freq_;
  DeviceBuffer metadata_buffer_;
  std::vector<int32_t> metadata_host_;
};

}  // namespace tokenfab
