// ModelConfig: what tokenfab needs from a Hugging Face config.json, for every supported
// architecture, whichever way the file spells it (the classic hub format with rope_theta /
// rope_scaling / torch_dtype, or the transformers-5 format with rope_parameters / dtype).
//
// Sizes (hidden_size, num_hidden_layers, ...) are required; optional fields (epsilon, RoPE base,
// biases, tying) take the defaults of the transformers config class of that architecture.
// Unsupported features (another activation, a RoPE type we do not implement) are rejected with
// an error naming the field, never silently ignored. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace tokenfab {

enum class Architecture { kLlama, kMistral, kQwen2, kQwen3, kQwen3Moe, kMixtral };

std::string_view ArchitectureName(Architecture arch);  // "LlamaForCausalLM", ...

struct RopeConfig {
  std::string type = "default";  // default | linear | llama3
  double theta = 10000.0;
  double factor = 1.0;  // linear, llama3
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // dense MLP width (Mixtral: each expert's width)
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  RopeConfig rope;

  bool tie_word_embeddings = false;
  bool qkv_bias = false;   // bias on q/k/v projections
  bool o_bias = false;     // bias on the output projection
  bool mlp_bias = false;   // bias on gate/up/down
  bool qk_norm = false;    // per-head RMSNorm of q and k (Qwen3)

  // Sliding-window attention: window in tokens for each layer, 0 for full attention.
  std::vector<int64_t> sliding_window;

  // Mixture of experts (num_experts == 0: dense model).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  bool norm_topk_prob = false;
  int64_t decoder_sparse_step = 1;
  std::vector<int64_t> mlp_only_layers;

  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  std::string dtype;  // the checkpoint's declared dtype, informational

  bool IsMoeLayer(int64_t layer) const;
  int64_t q_size() const { return num_heads * head_dim; }
  int64_t kv_size() const { return num_kv_heads * head_dim; }
  // Parameters (weights, biases, norms), counting tied embeddings once.
  int64_t NumParameters() const;

  Status Validate() const;
};

// Parses config.json text; `source` names the file in error messages.
Result<ModelConfig> ParseModelConfig(std::string_view json_text, std::string_view source);

// Reads and parses DIR/config.json.
Result<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace tokenfab
