#include "model/model_config.h"

#include <algorithm>
#include <map>

#include "base/json.h"
#include "base/mapped_file.h"

namespace tokenfab {
namespace {

struct ArchInfo {
  Architecture arch;
  const char* class_name;
  const char* model_type;
  double default_rms_eps;
  double default_rope_theta;
  int64_t default_head_dim;  // 0: hidden_size / num_attention_heads
};

constexpr ArchInfo kArchs[] = {
    {Architecture::kLlama, "LlamaForCausalLM", "llama", 1e-6, 10000.0, 0},
    {Architecture::kMistral, "MistralForCausalLM", "mistral", 1e-6, 10000.0, 0},
    {Architecture::kQwen2, "Qwen2ForCausalLM", "qwen2", 1e-6, 10000.0, 0},
    {Architecture::kQwen3, "Qwen3ForCausalLM", "qwen3", 1e-6, 10000.0, 128},
    {Architecture::kQwen3Moe, "Qwen3MoeForCausalLM", "qwen3_moe", 1e-6, 10000.0, 0},
    {Architecture::kMixtral, "MixtralForCausalLM", "mixtral", 1e-5, 1000000.0, 0},
};

const ArchInfo& InfoOf(Architecture arch) {
  for (const ArchInfo& info : kArchs) {
    if (info.arch == arch) return info;
  }
  return kArchs[0];
}

std::string SupportedList() {
  std::string s;
  for (const ArchInfo& info : kArchs) s += (s.empty() ? "" : ", ") + std::string(info.class_name);
  return s;
}

Result<const ArchInfo*> DetectArchitecture(const JsonObject& j) {
  if (j.Has("architectures")) {
    const Json& list = j.json().at("architectures");
    if (!list.is_array() || list.empty() || !list[0].is_string()) {
      return InvalidArgumentError(j.context() + ": field 'architectures' must be a list of names");
    }
    const std::string name = list[0].get<std::string>();
    for (const ArchInfo& info : kArchs) {
      if (name == info.class_name) return &info;
    }
    return InvalidArgumentError(j.context() + ": unsupported architecture '" + name +
                                "' (supported: " + SupportedList() + ")");
  }
  TF_ASSIGN_OR_RETURN(const std::string model_type, j.StringOr("model_type", ""));
  for (const ArchInfo& info : kArchs) {
    if (model_type == info.model_type) return &info;
  }
  return InvalidArgumentError(j.context() + ": unsupported or missing model_type '" + model_type +
                              "' and no 'architectures' (supported: " + SupportedList() + ")");
}

// RoPE from either `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling` (hub).
Result<RopeConfig> ParseRope(const JsonObject& j, double default_theta) {
  RopeConfig rope;
  TF_ASSIGN_OR_RETURN(rope.theta, j.NumberOr("rope_theta", default_theta));
  const char* scaling_key = j.Has("rope_parameters") ? "rope_parameters" : "rope_scaling";
  if (j.Has(scaling_key)) {
    TF_ASSIGN_OR_RETURN(const JsonObject r, j.Object(scaling_key));
    TF_ASSIGN_OR_RETURN(const std::string legacy_type, r.StringOr("type", "default"));
    TF_ASSIGN_OR_RETURN(rope.type, r.StringOr("rope_type", legacy_type));
    TF_ASSIGN_OR_RETURN(rope.theta, r.NumberOr("rope_theta", rope.theta));
    if (rope.type == "linear") {
      TF_ASSIGN_OR_RETURN(rope.factor, r.Number("factor"));
    } else if (rope.type == "llama3") {
      TF_ASSIGN_OR_RETURN(rope.factor, r.Number("factor"));
      TF_ASSIGN_OR_RETURN(rope.low_freq_factor, r.Number("low_freq_factor"));
      TF_ASSIGN_OR_RETURN(rope.high_freq_factor, r.Number("high_freq_factor"));
      TF_ASSIGN_OR_RETURN(rope.original_max_position_embeddings,
                          r.Int("original_max_position_embeddings"));
    } else if (rope.type != "default") {
      return InvalidArgumentError(r.context() + ": RoPE type '" + rope.type +
                                  "' is not supported (supported: default, linear, llama3)");
    }
  }
  return rope;
}

// Which layers use sliding-window attention, following each architecture's rule.
Status ParseSlidingWindow(const JsonObject& j, ModelConfig& c) {
  c.sliding_window.assign(c.num_layers, 0);
  const bool qwen = c.arch == Architecture::kQwen2 || c.arch == Architecture::kQwen3 ||
                    c.arch == Architecture::kQwen3Moe;
  // An absent key takes the config class's default (MistralConfig and the Qwen configs: 4096);
  // an explicit null means no window.
  int64_t window = c.arch == Architecture::kMistral || qwen ? 4096 : 0;
  if (j.json().contains("sliding_window")) {
    TF_ASSIGN_OR_RETURN(window, j.IntOr("sliding_window", 0));
  }
  if (window < 0) return InvalidArgumentError(j.context() + ": field 'sliding_window' is negative");
  if (j.Has("layer_types")) {
    const Json& types = j.json().at("layer_types");
    if (!types.is_array() || static_cast<int64_t>(types.size()) != c.num_layers) {
      return InvalidArgumentError(j.context() +
                                  ": field 'layer_types' must list one type per layer");
    }
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string type = types[i].is_string() ? types[i].get<std::string>() : "";
      if (type == "sliding_attention") {
        if (window <= 0) {
          return InvalidArgumentError(j.context() +
                                      ": sliding_attention layers need a 'sliding_window'");
        }
        c.sliding_window[i] = window;
      } else if (type != "full_attention") {
        return InvalidArgumentError(j.context() + ": unsupported layer type '" + type + "'");
      }
    }
    return Status::Ok();
  }
  if (window == 0) return Status::Ok();
  if (!qwen) {  // Mistral, Mixtral: every layer
    std::fill(c.sliding_window.begin(), c.sliding_window.end(), window);
    return Status::Ok();
  }
  TF_ASSIGN_OR_RETURN(const bool use, j.BoolOr("use_sliding_window", false));
  if (!use) return Status::Ok();
  if (c.arch == Architecture::kQwen3Moe) {  // no max_window_layers: every layer
    std::fill(c.sliding_window.begin(), c.sliding_window.end(), window);
    return Status::Ok();
  }
  // Qwen2Config / Qwen3Config: layers from max_window_layers (default 28) on slide.
  TF_ASSIGN_OR_RETURN(const int64_t max_window_layers, j.IntOr("max_window_layers", 28));
  for (int64_t i = max_window_layers; i < c.num_layers; ++i) c.sliding_window[i] = window;
  return Status::Ok();
}

Status ParseMoe(const JsonObject& j, ModelConfig& c) {
  if (c.arch == Architecture::kQwen3Moe) {
    // transformers 5 writes num_local_experts; hub configs say num_experts.
    const char* experts_key = j.Has("num_experts") ? "num_experts" : "num_local_experts";
    TF_ASSIGN_OR_RETURN(c.num_experts, j.Int(experts_key));
    TF_ASSIGN_OR_RETURN(c.num_experts_per_tok, j.Int("num_experts_per_tok"));
    TF_ASSIGN_OR_RETURN(c.moe_intermediate_size, j.Int("moe_intermediate_size"));
    TF_ASSIGN_OR_RETURN(c.norm_topk_prob, j.BoolOr("norm_topk_prob", false));
    TF_ASSIGN_OR_RETURN(c.decoder_sparse_step, j.IntOr("decoder_sparse_step", 1));
    TF_ASSIGN_OR_RETURN(c.mlp_only_layers, j.IntList("mlp_only_layers"));
  } else if (c.arch == Architecture::kMixtral) {
    TF_ASSIGN_OR_RETURN(c.num_experts, j.Int("num_local_experts"));
    TF_ASSIGN_OR_RETURN(c.num_experts_per_tok, j.Int("num_experts_per_tok"));
    c.moe_intermediate_size = c.intermediate_size;
    c.norm_topk_prob = true;  // Mixtral always renormalises the top-k weights
  }
  return Status::Ok();
}

}  // namespace

std::string_view ArchitectureName(Architecture arch) { return InfoOf(arch).class_name; }

bool ModelConfig::IsMoeLayer(int64_t layer) const {
  if (num_experts == 0) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) {
    return false;
  }
  return (layer + 1) % decoder_sparse_step == 0;
}

int64_t ModelConfig::NumParameters() const {
  const int64_t h = hidden_size;
  int64_t n = vocab_size * h * (tie_word_embeddings ? 1 : 2) + h;
  for (int64_t l = 0; l < num_layers; ++l) {
    n += h * (q_size() + 2 * kv_size()) + q_size() * h + 2 * h;
    if (qkv_bias) n += q_size() + 2 * kv_size();
    if (o_bias) n += h;
    if (qk_norm) n += 2 * head_dim;
    if (IsMoeLayer(l)) {
      n += num_experts * h + num_experts * 3 * h * moe_intermediate_size;
    } else {
      n += 3 * h * intermediate_size;
      if (mlp_bias) n += 2 * intermediate_size + h;
    }
  }
  return n;
}

Status ModelConfig::Validate() const {
  auto in_range = [](int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; };
  struct Field {
    const char* name;
    int64_t value;
    int64_t max;
  };
  const Field fields[] = {
      {"vocab_size", vocab_size, 16'000'000},      {"hidden_size", hidden_size, 1 << 17},
      {"intermediate_size", intermediate_size, 1 << 20},
      {"num_hidden_layers", num_layers, 4096},     {"num_attention_heads", num_heads, 4096},
      {"num_key_value_heads", num_kv_heads, 4096}, {"head_dim", head_dim, 4096},
  };
  for (const Field& f : fields) {
    if (!in_range(f.value, 1, f.max)) {
      return InvalidArgumentError(std::string("field '") + f.name + "' = " +
                                  std::to_string(f.value) + " is outside [1, " +
                                  std::to_string(f.max) + "]");
    }
  }
  if (num_heads % num_kv_heads != 0) {
    return InvalidArgumentError("num_attention_heads (" + std::to_string(num_heads) +
                                ") is not a multiple of num_key_value_heads (" +
                                std::to_string(num_kv_heads) + ")");
  }
  if (head_dim % 2 != 0) return InvalidArgumentError("head_dim must be even for RoPE");
  if (!(rms_norm_eps > 0.0)) return InvalidArgumentError("rms_norm_eps must be > 0");
  if (!(rope.theta > 0.0)) return InvalidArgumentError("rope_theta must be > 0");
  if (rope.type == "linear" && !(rope.factor > 0.0)) {
    return InvalidArgumentError("RoPE factor must be > 0");
  }
  if (rope.type == "llama3" &&
      (!(rope.factor > 0.0) || !(rope.high_freq_factor > rope.low_freq_factor) ||
       !(rope.low_freq_factor > 0.0) || rope.original_max_position_embeddings <= 0)) {
    return InvalidArgumentError("inconsistent llama3 RoPE scaling parameters");
  }
  if (static_cast<int64_t>(sliding_window.size()) != num_layers) {
    return InvalidArgumentError("sliding window list does not match the layer count");
  }
  if (num_experts > 0) {
    if (!in_range(num_experts, 1, 4096) || !in_range(num_experts_per_tok, 1, num_experts)) {
      return InvalidArgumentError("num_experts_per_tok must be in [1, num_experts]");
    }
    if (!in_range(moe_intermediate_size, 1, 1 << 20)) {
      return InvalidArgumentError("moe_intermediate_size is out of range");
    }
    if (decoder_sparse_step < 1) {
      return InvalidArgumentError("decoder_sparse_step must be >= 1");
    }
  }
  return Status::Ok();
}

Result<ModelConfig> ParseModelConfig(std::string_view json_text, std::string_view source) {
  TF_ASSIGN_OR_RETURN(const Json root, ParseJson(json_text, source));
  TF_ASSIGN_OR_RETURN(const JsonObject j, JsonObject::From(root, std::string(source)));
  TF_ASSIGN_OR_RETURN(const ArchInfo* info, DetectArchitecture(j));

  ModelConfig c;
  c.arch = info->arch;
  TF_ASSIGN_OR_RETURN(c.vocab_size, j.Int("vocab_size"));
  TF_ASSIGN_OR_RETURN(c.hidden_size, j.Int("hidden_size"));
  TF_ASSIGN_OR_RETURN(c.intermediate_size, j.Int("intermediate_size"));
  TF_ASSIGN_OR_RETURN(c.num_layers, j.Int("num_hidden_layers"));
  TF_ASSIGN_OR_RETURN(c.num_heads, j.Int("num_attention_heads"));
  TF_ASSIGN_OR_RETURN(c.num_kv_heads, j.IntOr("num_key_value_heads", c.num_heads));
  if (c.num_heads <= 0) {
    return InvalidArgumentError(std::string(source) + ": num_attention_heads must be positive");
  }
  TF_ASSIGN_OR_RETURN(c.head_dim,
                      j.IntOr("head_dim", info->default_head_dim > 0 ? info->default_head_dim
                                                                     : c.hidden_size / c.num_heads));
  TF_ASSIGN_OR_RETURN(c.rms_norm_eps, j.NumberOr("rms_norm_eps", info->default_rms_eps));
  TF_ASSIGN_OR_RETURN(c.max_position_embeddings, j.IntOr("max_position_embeddings", 0));
  TF_ASSIGN_OR_RETURN(c.tie_word_embeddings, j.BoolOr("tie_word_embeddings", false));
  TF_ASSIGN_OR_RETURN(c.rope, ParseRope(j, info->default_rope_theta));
  TF_ASSIGN_OR_RETURN(const double partial_rotary, j.NumberOr("partial_rotary_factor", 1.0));
  if (partial_rotary != 1.0) {
    return InvalidArgumentError(std::string(source) +
                                ": partial_rotary_factor != 1 is not supported");
  }
  TF_ASSIGN_OR_RETURN(const std::string act, j.StringOr("hidden_act", "silu"));
  if (act != "silu") {
    return InvalidArgumentError(std::string(source) + ": hidden_act '" + act +
                                "' is not supported (only silu)");
  }

  TF_ASSIGN_OR_RETURN(const bool attention_bias, j.BoolOr("attention_bias", false));
  switch (c.arch) {
    case Architecture::kLlama: {
      c.qkv_bias = c.o_bias = attention_bias;
      TF_ASSIGN_OR_RETURN(c.mlp_bias, j.BoolOr("mlp_bias", false));
      break;
    }
    case Architecture::kQwen2:
      c.qkv_bias = true;  // hard-wired in Qwen2's attention; o_proj has none
      break;
    case Architecture::kQwen3:
    case Architecture::kQwen3Moe:
      c.qkv_bias = c.o_bias = attention_bias;
      c.qk_norm = true;
      break;
    case Architecture::kMistral:
    case Architecture::kMixtral:
      break;
  }
  if (c.num_layers > 0 && c.num_layers <= 4096) {
    TF_RETURN_IF_ERROR(ParseSlidingWindow(j, c));
  }
  TF_RETURN_IF_ERROR(ParseMoe(j, c));

  TF_ASSIGN_OR_RETURN(c.bos_token_id, j.IntOr("bos_token_id", -1));
  TF_ASSIGN_OR_RETURN(c.eos_token_ids, j.IntList("eos_token_id"));
  TF_ASSIGN_OR_RETURN(const std::string torch_dtype, j.StringOr("torch_dtype", ""));
  TF_ASSIGN_OR_RETURN(c.dtype, j.StringOr("dtype", torch_dtype));

  const Status valid = c.Validate();
  if (!valid.ok()) return InvalidArgumentError(std::string(source) + ": " + valid.message());
  return c;
}

Result<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  if (!IsDirectory(model_dir)) {
    return NotFoundError("model directory '" + model_dir + "' does not exist");
  }
  const std::string path = JoinPath(model_dir, "config.json");
  if (!PathExists(path)) return NotFoundError(path + ": not found");
  TF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseModelConfig(text, path);
}

}  // namespace tokenfab
