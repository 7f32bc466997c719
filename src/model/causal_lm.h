// CausalLm: the decoder-only transformer forward pass of every supported architecture, written
// once over backend Ops. Architecture differences are data (biases present, q/k norm, MoE
// layers, sliding windows), not code paths per model.
//
// Forward runs one ragged batch: embeds the new tokens, writes their K/V into the paged cache,
// attends over each sequence's cache, and produces next-token logits for the requested rows —
// copied to the host, or sampled on the device (backend/device_sampling.h) so that only token
// ids come back. On backends with graphs, decode steps (every sequence exactly one new token,
// up to 256 sequences) are padded to a few batch sizes and replayed from captured graphs.
// Thread-safety: one thread calls Forward at a time (the engine's owner thread).
#pragma once

#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/device_sampling.h"
#include "backend/kv_cache_tensors.h"
#include "model/forward_batch.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace tokenfab {

// What Forward should return; any combination.
struct ForwardOutputs {
  std::vector<float>* logits = nullptr;              // [rows, vocab] f32, row-major
  // With `logits`: only these rows (indices into the logit rows), in this order,
  // [logit_rows_to_host.size(), vocab]; empty means every row.
  std::span<const int32_t> logit_rows_to_host;
  std::span<const DeviceSamplingParams> sampling;    // [rows]: sample on the device
  std::vector<int32_t>* tokens = nullptr;            // [rows] sampled tokens
  std::vector<float>* token_logprobs = nullptr;      // [rows] raw log-probs of those tokens
};

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

  // InvalidArgument for an inconsistent batch or a token id outside the vocabulary.
  Status Forward(const ForwardBatch& batch, const KvCacheTensors& kv, const ForwardOutputs& out);
  // Logits only: [batch.logit_rows.size(), vocab_size].
  Status Forward(const ForwardBatch& batch, const KvCacheTensors& kv, std::vector<float>* logits);

  // Whether decode steps replay graphs (backend support, unless TOKENFAB_NO_GRAPHS is set).
  bool graphs_enabled() const { return graphs_enabled_; }
  // The batch sizes decode graphs are captured for; a decode step is padded to the next one.
  static std::span<const int32_t> GraphBatchSizes();

 private:
  CausalLm(ModelConfig config, ModelWeights weights, Backend* backend);

  // Device views of one batch's inputs, all in one uploaded buffer.
  struct BatchViews {
    AttentionMetadata meta;
    Tensor token_ids;  // i32 [T]
    Tensor logit_rows; // i32 [R]
    Tensor sampling;   // u8 [R * sizeof(DeviceSamplingParams)], or empty
    int32_t num_rows = 0;
  };

  Status ValidateBatch(const ForwardBatch& batch, const KvCacheTensors& kv) const;
  // Packs batch (padded to `seqs` decode rows when pad) into metadata_host_ with a layout of
  // `seqs` sequences and `blocks_per_seq` block-table columns, and uploads it to `base`.
  Status Upload(const ForwardBatch& batch, std::span<const DeviceSamplingParams> sampling,
                int32_t seqs, int32_t blocks_per_seq, bool pad, DeviceBuffer* buffer,
                BatchViews* views);
  // Embedding, the layers, final norm, lm_head over the logit rows, sampling if asked.
  Status RunBody(const BatchViews& v, const KvCacheTensors& kv);
  // One decoder layer over the first t rows. Its input projection is skipped when the layer
  // before already ran it (`qkv_ready`); on return `next_qkv_ready` says whether this layer ran
  // the next one's, chained after its MLP so their weights stream as one (ProjectionChain).
  Status RunLayer(int layer, const KvCacheTensors& kv, const AttentionMetadata& meta, int32_t t,
                  bool qkv_ready, bool* next_qkv_ready);
  // Layer l's input projection: RmsNorm of the residual stream, then the Q/K/V matrix.
  ProjectionStage QkvStage(int layer, int32_t t) const;
  Status CopyOutputs(const BatchViews& v, int32_t rows, const ForwardOutputs& out);

  bool GraphEligible(const ForwardBatch& batch, const ForwardOutputs& out) const;
  Status ForwardGraph(const ForwardBatch& batch, const KvCacheTensors& kv,
                      const ForwardOutputs& out);

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
  Tensor qkv_, q_, attn_, mlp_in_;
  Tensor router_logits_, route_ids_, route_weights_, logits_, sampled_tokens_, sampled_logprobs_;
  Tensor row_hidden_;   // f32 [R, H]: the residual rows whose logits are wanted
  DeviceBuffer inv_freq_buffer_;
  Tensor inv_freq_;
  DeviceBuffer metadata_buffer_;  // eager batches
  std::vector<uint8_t> metadata_host_;

  // Graphs of decode steps, keyed by (padded sequence count, block-table width).
  bool graphs_enabled_ = false;
  int32_t graph_max_blocks_ = 0;
  DeviceBuffer graph_buffer_;  // inputs of whichever graph runs; fixed address
  std::map<std::pair<int32_t, int32_t>, int> graphs_;
};

}  // namespace tokenfab
