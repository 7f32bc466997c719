// config.json parsing: both formats transformers writes (classic hub: rope_theta, rope_scaling,
// torch_dtype, num_experts; transformers 5: rope_parameters, dtype, num_local_experts), sliding
// windows per architecture, the defaults of each transformers config class, rejection of what
// tokenfab cannot run, and every real model config in configs/.
#include "model/model_config.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/mapped_file.h"
#include "test_util.h"

namespace tokenfab {
namespace {

// A minimal valid config of `arch`, to which tests add or change fields.
Json Minimal(const std::string& arch) {
  Json j = {{"architectures", {arch}},  {"vocab_size", 1000},     {"hidden_size", 64},
            {"intermediate_size", 128}, {"num_hidden_layers", 4}, {"num_attention_heads", 4}};
  if (arch == "Qwen3MoeForCausalLM") {
    j["num_experts"] = 8;
    j["num_experts_per_tok"] = 2;
    j["moe_intermediate_size"] = 32;
  } else if (arch == "MixtralForCausalLM") {
    j["num_local_experts"] = 8;
    j["num_experts_per_tok"] = 2;
  }
  return j;
}

Result<ModelConfig> Parse(const Json& j) { return ParseModelConfig(j.dump(), "test/config.json"); }

ModelConfig ParseOk(const Json& j) {
  auto c = Parse(j);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : ModelConfig();
}

// InvalidArgument whose message names the file and contains `needle`.
void ExpectRejected(const Json& j, const std::string& needle) {
  const auto c = Parse(j);
  ASSERT_FALSE(c.ok()) << "accepted: " << j.dump();
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("test/config.json"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
}

TEST(ModelConfigTest, ClassicHubFormat) {
  Json j = Minimal("LlamaForCausalLM");
  j["num_key_value_heads"] = 1;
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  j["torch_dtype"] = "bfloat16";
  j["rms_norm_eps"] = 1e-5;
  j["eos_token_id"] = {128001, 128009};
  j["bos_token_id"] = 128000;
  j["max_position_embeddings"] = 131072;
  const ModelConfig c = ParseOk(j);
  EXPECT_EQ(c.arch, Architecture::kLlama);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128009}));
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.max_position_embeddings, 131072);
}

TEST(ModelConfigTest, Transformers5Format) {
  Json j = Minimal("LlamaForCausalLM");
  j["rope_parameters"] = {{"rope_type", "llama3"},   {"rope_theta", 500000.0},
                          {"factor", 8.0},           {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  j["dtype"] = "float16";
  const ModelConfig c = ParseOk(j);
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.dtype, "float16");
}

TEST(ModelConfigTest, RopeVariants) {
  Json j = Minimal("LlamaForCausalLM");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  ModelConfig c = ParseOk(j);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_EQ(c.rope.theta, 1e6);
  // The legacy "type" key of rope_scaling, and linear scaling.
  j = Minimal("LlamaForCausalLM");
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  c = ParseOk(j);
  EXPECT_EQ(c.rope.type, "linear");
  EXPECT_EQ(c.rope.factor, 4.0);
  EXPECT_EQ(c.rope.theta, 10000.0);
  // rope_scaling: null is the same as absent.
  j = Minimal("Qwen2ForCausalLM");
  j["rope_scaling"] = nullptr;
  j["rope_theta"] = 1000000;
  c = ParseOk(j);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_EQ(c.rope.theta, 1e6);
}

TEST(ModelConfigTest, DtypeWinsOverTorchDtype) {
  Json j = Minimal("LlamaForCausalLM");
  j["torch_dtype"] = "float32";
  j["dtype"] = "bfloat16";
  EXPECT_EQ(ParseOk(j).dtype, "bfloat16");
  j.erase("dtype");
  EXPECT_EQ(ParseOk(j).dtype, "float32");
}

TEST(ModelConfigTest, ExpertCountUnderBothNames) {
  Json hub = Minimal("Qwen3MoeForCausalLM");
  ModelConfig c = ParseOk(hub);
  EXPECT_EQ(c.num_experts, 8);
  Json t5 = Minimal("Qwen3MoeForCausalLM");
  t5.erase("num_experts");
  t5["num_local_experts"] = 16;
  c = ParseOk(t5);
  EXPECT_EQ(c.num_experts, 16);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_EQ(c.moe_intermediate_size, 32);
  EXPECT_FALSE(c.norm_topk_prob) << "Qwen3-MoE default";
  t5.erase("num_local_experts");
  ExpectRejected(t5, "num_local_experts");
  // Mixtral: num_local_experts, experts as wide as intermediate_size, always renormalised.
  c = ParseOk(Minimal("MixtralForCausalLM"));
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.moe_intermediate_size, 128);
  EXPECT_TRUE(c.norm_topk_prob);
  for (int64_t l = 0; l < 4; ++l) EXPECT_TRUE(c.IsMoeLayer(l));
}

TEST(ModelConfigTest, MoeLayerSelection) {
  Json j = Minimal("Qwen3MoeForCausalLM");
  j["num_hidden_layers"] = 6;
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  const ModelConfig c = ParseOk(j);
  // transformers: MoE iff layer not in mlp_only_layers and (layer + 1) % step == 0.
  const std::vector<bool> want = {false, true, false, false, false, true};
  for (int64_t l = 0; l < 6; ++l) EXPECT_EQ(c.IsMoeLayer(l), want[l]) << "layer " << l;
  EXPECT_FALSE(ParseOk(Minimal("LlamaForCausalLM")).IsMoeLayer(0));
}

TEST(ModelConfigTest, LayerTypesSetPerLayerWindows) {
  Json j = Minimal("Qwen3ForCausalLM");
  j["sliding_window"] = 8;
  j["use_sliding_window"] = true;
  j["layer_types"] = {"full_attention", "sliding_attention", "sliding_attention", "full_attention"};
  EXPECT_EQ(ParseOk(j).sliding_window, (std::vector<int64_t>{0, 8, 8, 0}));
  j["layer_types"] = {"full_attention", "sliding_attention", "chunked_attention", "full_attention"};
  ExpectRejected(j, "chunked_attention");
  j["layer_types"] = {"full_attention", "sliding_attention"};
  ExpectRejected(j, "layer_types");
  j["layer_types"] = {"sliding_attention", "sliding_attention", "full_attention", "full_attention"};
  j["sliding_window"] = nullptr;
  ExpectRejected(j, "sliding_window");
}

TEST(ModelConfigTest, QwenSlidingWindowFromUseSlidingWindowAndMaxWindowLayers) {
  for (const char* arch : {"Qwen2ForCausalLM", "Qwen3ForCausalLM"}) {
    SCOPED_TRACE(arch);
    Json j = Minimal(arch);
    j["sliding_window"] = 32;
    j["max_window_layers"] = 2;
    j["use_sliding_window"] = false;
    EXPECT_EQ(ParseOk(j).sliding_window, (std::vector<int64_t>{0, 0, 0, 0}));
    j["use_sliding_window"] = true;  // layers from max_window_layers on slide
    EXPECT_EQ(ParseOk(j).sliding_window, (std::vector<int64_t>{0, 0, 32, 32}));
    j["max_window_layers"] = 0;
    EXPECT_EQ(ParseOk(j).sliding_window, (std::vector<int64_t>{32, 32, 32, 32}));
  }
}

TEST(ModelConfigTest, MistralAndMixtralSlideOnEveryLayer) {
  for (const char* arch : {"MistralForCausalLM", "MixtralForCausalLM"}) {
    SCOPED_TRACE(arch);
    Json j = Minimal(arch);
    j["sliding_window"] = 40;
    EXPECT_EQ(ParseOk(j).sliding_window, (std::vector<int64_t>{40, 40, 40, 40}));
    j["sliding_window"] = nullptr;  // Mistral v0.2+: explicitly none
    EXPECT_EQ(ParseOk(j).sliding_window, (std::vector<int64_t>{0, 0, 0, 0}));
  }
  Json j = Minimal("LlamaForCausalLM");
  j["sliding_window"] = -1;
  ExpectRejected(j, "sliding_window");
}

TEST(ModelConfigTest, DefaultsOfEachArchitecture) {
  // What the transformers config classes default to when a field is absent.
  struct Want {
    const char* arch;
    Architecture id;
    double eps, theta;
    bool qkv_bias, qk_norm;
  };
  const Want wants[] = {
      {"LlamaForCausalLM", Architecture::kLlama, 1e-6, 10000.0, false, false},
      {"MistralForCausalLM", Architecture::kMistral, 1e-6, 10000.0, false, false},
      {"Qwen2ForCausalLM", Architecture::kQwen2, 1e-6, 10000.0, true, false},
      {"Qwen3ForCausalLM", Architecture::kQwen3, 1e-6, 10000.0, false, true},
      {"Qwen3MoeForCausalLM", Architecture::kQwen3Moe, 1e-6, 10000.0, false, true},
      {"MixtralForCausalLM", Architecture::kMixtral, 1e-5, 1000000.0, false, false},
  };
  for (const Want& w : wants) {
    SCOPED_TRACE(w.arch);
    const ModelConfig c = ParseOk(Minimal(w.arch));
    EXPECT_EQ(c.arch, w.id);
    EXPECT_EQ(ArchitectureName(c.arch), w.arch);
    EXPECT_EQ(c.rms_norm_eps, w.eps);
    EXPECT_EQ(c.rope.theta, w.theta);
    EXPECT_EQ(c.rope.type, "default");
    EXPECT_EQ(c.qkv_bias, w.qkv_bias);
    EXPECT_FALSE(c.o_bias);
    EXPECT_FALSE(c.mlp_bias);
    EXPECT_EQ(c.qk_norm, w.qk_norm);
    EXPECT_EQ(c.num_kv_heads, 4) << "num_key_value_heads defaults to num_attention_heads";
    EXPECT_FALSE(c.tie_word_embeddings);
    EXPECT_EQ(c.bos_token_id, -1);
    EXPECT_TRUE(c.eos_token_ids.empty());
    // MistralConfig's sliding_window defaults to 4096 (SlidingWindowDefaults); the others slide
    // only when asked.
    EXPECT_EQ(c.sliding_window,
              std::vector<int64_t>(4, c.arch == Architecture::kMistral ? 4096 : 0));
  }
}

TEST(ModelConfigTest, HeadDimDefaults) {
  // hidden_size / num_attention_heads, except Qwen3, whose config class defaults head_dim to 128
  // (transformers' Qwen3Config: head_dim: int = 128).
  for (const char* arch : {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                           "Qwen3MoeForCausalLM", "MixtralForCausalLM"}) {
    EXPECT_EQ(ParseOk(Minimal(arch)).head_dim, 16) << arch;
  }
  EXPECT_EQ(ParseOk(Minimal("Qwen3ForCausalLM")).head_dim, 128);
  Json j = Minimal("Qwen3ForCausalLM");
  j["head_dim"] = 24;
  EXPECT_EQ(ParseOk(j).head_dim, 24);
}

TEST(ModelConfigTest, SlidingWindowDefaults) {
  // MistralConfig: sliding_window defaults to 4096 when the key is absent (null means none).
  Json m = Minimal("MistralForCausalLM");
  EXPECT_EQ(ParseOk(m).sliding_window, (std::vector<int64_t>(4, 4096)));
  // MixtralConfig: defaults to none.
  EXPECT_EQ(ParseOk(Minimal("MixtralForCausalLM")).sliding_window, (std::vector<int64_t>(4, 0)));
  // Qwen2Config / Qwen3Config: use_sliding_window with sliding_window 4096 and
  // max_window_layers 28 by default.
  for (const char* arch : {"Qwen2ForCausalLM", "Qwen3ForCausalLM"}) {
    SCOPED_TRACE(arch);
    Json j = Minimal(arch);
    j["num_hidden_layers"] = 30;
    j["use_sliding_window"] = true;
    std::vector<int64_t> want(30, 0);
    want[28] = want[29] = 4096;
    EXPECT_EQ(ParseOk(j).sliding_window, want);
  }
  // Qwen3MoeConfig has no max_window_layers: use_sliding_window slides every layer.
  Json q = Minimal("Qwen3MoeForCausalLM");
  q["use_sliding_window"] = true;
  q["sliding_window"] = 64;
  EXPECT_EQ(ParseOk(q).sliding_window, (std::vector<int64_t>(4, 64)));
}

TEST(ModelConfigTest, BiasesPerArchitecture) {
  Json j = Minimal("LlamaForCausalLM");
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  ModelConfig c = ParseOk(j);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.mlp_bias);
  // Qwen2: q/k/v biases always, never on o_proj.
  j = Minimal("Qwen2ForCausalLM");
  j["attention_bias"] = false;
  c = ParseOk(j);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  j = Minimal("Qwen3ForCausalLM");
  j["attention_bias"] = true;
  c = ParseOk(j);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  // Mistral has no bias option.
  j = Minimal("MistralForCausalLM");
  j["attention_bias"] = true;
  EXPECT_FALSE(ParseOk(j).qkv_bias);
}

TEST(ModelConfigTest, ArchitectureFromModelTypeWhenArchitecturesIsAbsent) {
  Json j = Minimal("LlamaForCausalLM");
  j.erase("architectures");
  j["model_type"] = "qwen3_moe";
  j["num_experts"] = 4;
  j["num_experts_per_tok"] = 1;
  j["moe_intermediate_size"] = 8;
  EXPECT_EQ(ParseOk(j).arch, Architecture::kQwen3Moe);
  j["model_type"] = "gpt2";
  ExpectRejected(j, "gpt2");
}

TEST(ModelConfigTest, RejectsWhatCannotRun) {
  auto with = [](const std::string& arch, const std::string& key, const Json& value) {
    Json j = Minimal(arch);
    if (value.is_null()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return j;
  };
  ExpectRejected(with("LlamaForCausalLM", "architectures", {"GPT2LMHeadModel"}), "GPT2LMHeadModel");
  ExpectRejected(with("LlamaForCausalLM", "architectures", Json::array()), "architectures");
  ExpectRejected(with("LlamaForCausalLM", "rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}),
                 "yarn");
  ExpectRejected(with("LlamaForCausalLM", "rope_parameters", {{"rope_type", "dynamic"}}),
                 "dynamic");
  ExpectRejected(with("LlamaForCausalLM", "rope_scaling", {{"rope_type", "linear"}}), "factor");
  ExpectRejected(with("LlamaForCausalLM", "rope_scaling",
                      {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}}),
                 "high_freq_factor");
  ExpectRejected(with("LlamaForCausalLM", "rope_scaling",
                      {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 4.0},
                       {"high_freq_factor", 1.0},
                       {"original_max_position_embeddings", 8192}}),
                 "llama3");
  ExpectRejected(with("LlamaForCausalLM", "hidden_act", "gelu"), "gelu");
  ExpectRejected(with("LlamaForCausalLM", "partial_rotary_factor", 0.5), "partial_rotary_factor");
  ExpectRejected(with("LlamaForCausalLM", "vocab_size", nullptr), "vocab_size");
  ExpectRejected(with("LlamaForCausalLM", "hidden_size", "64"), "hidden_size");
  ExpectRejected(with("LlamaForCausalLM", "num_hidden_layers", 0), "num_hidden_layers");
  ExpectRejected(with("LlamaForCausalLM", "num_hidden_layers", 1.5), "num_hidden_layers");
  ExpectRejected(with("LlamaForCausalLM", "num_attention_heads", 0), "num_attention_heads");
  ExpectRejected(with("LlamaForCausalLM", "num_key_value_heads", 3), "num_key_value_heads");
  ExpectRejected(with("LlamaForCausalLM", "head_dim", 15), "head_dim");
  ExpectRejected(with("LlamaForCausalLM", "rms_norm_eps", 0.0), "rms_norm_eps");
  ExpectRejected(with("LlamaForCausalLM", "rope_theta", -1.0), "rope_theta");
  ExpectRejected(with("LlamaForCausalLM", "tie_word_embeddings", "yes"), "tie_word_embeddings");
  ExpectRejected(with("LlamaForCausalLM", "eos_token_id", {1, "2"}), "eos_token_id");
  ExpectRejected(with("LlamaForCausalLM", "vocab_size", 100'000'000), "vocab_size");
  ExpectRejected(with("Qwen3MoeForCausalLM", "num_experts_per_tok", 9), "num_experts_per_tok");
  ExpectRejected(with("Qwen3MoeForCausalLM", "moe_intermediate_size", 0), "moe_intermediate_size");
  ExpectRejected(with("Qwen3MoeForCausalLM", "decoder_sparse_step", 0), "decoder_sparse_step");
  ExpectRejected(with("MixtralForCausalLM", "num_local_experts", nullptr), "num_local_experts");
  // Not JSON, or not an object.
  EXPECT_EQ(ParseModelConfig("{\"vocab_size\": ", "test/config.json").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfig("[1, 2]", "test/config.json").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ModelConfigTest, IntegralFloatsAreIntegers) {
  Json j = Minimal("LlamaForCausalLM");
  j["hidden_size"] = 64.0;
  EXPECT_EQ(ParseOk(j).hidden_size, 64);
}

TEST(ModelConfigTest, LoadModelConfigErrorsNameThePath) {
  const auto missing_dir = LoadModelConfig("/nonexistent/model");
  EXPECT_EQ(missing_dir.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing_dir.status().message().find("/nonexistent/model"), std::string::npos);
  const std::string dir = testing::MakeTempDir("no_config");
  const auto missing_file = LoadModelConfig(dir);
  EXPECT_EQ(missing_file.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing_file.status().message().find("config.json"), std::string::npos);
  rmdir(dir.c_str());
}

// Every golden checkpoint's config parses; spot checks of what each exercises.
TEST(ModelConfigTest, GoldenConfigs) {
  auto load = [](const std::string& name) {
    auto c = LoadModelConfig(testing::TestDataPath("models/" + name));
    EXPECT_TRUE(c.ok()) << name << ": " << c.status().ToString();
    return c.ok() ? *c : ModelConfig();
  };
  EXPECT_EQ(load("llama_gqa4_llama3rope_classic").rope.type, "llama3");
  EXPECT_EQ(load("llama_headdim24_linear_sharded").rope.type, "linear");
  EXPECT_EQ(load("llama_headdim24_linear_sharded").head_dim, 24);
  EXPECT_EQ(load("mistral_sliding40_f32").sliding_window[0], 40);
  EXPECT_TRUE(load("qwen2_qkvbias_tied").tie_word_embeddings);
  EXPECT_TRUE(load("qwen3_qknorm_headdim24_classic").qk_norm);
  EXPECT_EQ(load("qwen3_moe_fused").num_experts, 8);
  EXPECT_FALSE(load("qwen3_moe_fused").IsMoeLayer(1));
  EXPECT_TRUE(load("mixtral_fused").norm_topk_prob);
  EXPECT_GT(load("mixtral_per_expert_sharded").num_experts, 0);
  EXPECT_TRUE(load("llama_bias_tied_f16").qkv_bias);
}

// ---------------------------------------------------------------------------------------------
// configs/: the real model configs benchmarks run. Each must parse; the known ones must give
// the published parameter counts (from the models' cards / safetensors metadata).

std::vector<std::string> RealConfigDirs() {
  std::vector<std::string> dirs;
  const std::string root = testing::TestDataPath("../../configs");
  if (DIR* d = opendir(root.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name[0] != '.' && PathExists(root + "/" + name + "/config.json")) dirs.push_back(name);
    }
    closedir(d);
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

TEST(RealConfigsTest, EveryConfigParsesWithThePublishedParameterCount) {
  const std::vector<std::string> dirs = RealConfigDirs();
  if (dirs.empty()) GTEST_SKIP() << "no configs/*/config.json in this checkout";
  const std::map<std::string, int64_t> published = {
      {"Llama-3.1-8B", 8'030'261'248}, {"Llama-3.1-70B", 70'553'706'496},
      {"Qwen3-8B", 8'190'735'360},     {"Qwen3-30B-A3B", 30'532'122'624},
      {"Qwen2.5-0.5B", 494'032'768},
  };
  const std::string root = testing::TestDataPath("../../configs/");
  for (const std::string& name : dirs) {
    SCOPED_TRACE(name);
    auto c = LoadModelConfig(root + name);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_OK(c->Validate());
    const auto it = published.find(name);
    if (it != published.end()) {
      EXPECT_EQ(c->NumParameters(), it->second);
    }
  }
}

TEST(RealConfigsTest, ShapesOfTheKnownModels) {
  const std::string root = testing::TestDataPath("../../configs/");
  if (!PathExists(root + "Llama-3.1-8B/config.json")) GTEST_SKIP() << "configs/ not present";
  ASSERT_OK_AND_ASSIGN(const ModelConfig llama, LoadModelConfig(root + "Llama-3.1-8B"));
  EXPECT_EQ(llama.arch, Architecture::kLlama);
  EXPECT_EQ(llama.head_dim, 128);
  EXPECT_EQ(llama.num_kv_heads, 8);
  EXPECT_EQ(llama.rope.type, "llama3");
  EXPECT_EQ(llama.rope.theta, 500000.0);
  EXPECT_EQ(llama.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  ASSERT_OK_AND_ASSIGN(const ModelConfig qwen2, LoadModelConfig(root + "Qwen2.5-0.5B"));
  EXPECT_TRUE(qwen2.qkv_bias);
  EXPECT_TRUE(qwen2.tie_word_embeddings);
  EXPECT_EQ(qwen2.head_dim, 64);
  EXPECT_EQ(qwen2.sliding_window, std::vector<int64_t>(24, 0)) << "use_sliding_window is false";
  ASSERT_OK_AND_ASSIGN(const ModelConfig moe, LoadModelConfig(root + "Qwen3-30B-A3B"));
  EXPECT_EQ(moe.num_experts, 128);
  EXPECT_EQ(moe.num_experts_per_tok, 8);
  EXPECT_TRUE(moe.norm_topk_prob);
  EXPECT_TRUE(moe.qk_norm);
  for (int64_t l = 0; l < moe.num_layers; ++l) EXPECT_TRUE(moe.IsMoeLayer(l));
  ASSERT_OK_AND_ASSIGN(const ModelConfig qwen3, LoadModelConfig(root + "Qwen3-8B"));
  EXPECT_EQ(qwen3.head_dim, 128);
  EXPECT_EQ(qwen3.rope.theta, 1e6);
}

}  // namespace
}  // namespace tokenfab
