// LoadWeights and MakeDummyWeights: the fused layouts the forward pass wants (q/k/v, gate/up,
// stacked experts) filled from the checkpoint's tensors in the right order, both MoE layouts
// giving identical weights, tied embeddings, and errors that name the tensor and its file.
#include "model/model_weights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "backend/backend_registry.h"
#include "backend/host_convert.h"
#include "checkpoint_files.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::ScopedTempDir;
using testing::TensorBlob;

std::unique_ptr<Backend> Cpu() {
  RegisterBuiltinBackends();
  auto b = CreateBackend("cpu", BackendOptions{0, 2});
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return std::move(b).value();
}

std::string Golden(const std::string& name) { return testing::TestDataPath("models/" + name); }

// Rewrites DIR/FILE after `edit` changes its tensors.
void EditTensors(const ScopedTempDir& dir, const std::string& file,
                 const std::function<void(std::vector<TensorBlob>&)>& edit) {
  std::vector<TensorBlob> tensors =
      testing::DecodeSafetensors(testing::ReadFileBytes(dir.file(file)));
  ASSERT_FALSE(tensors.empty());
  edit(tensors);
  testing::WriteFileBytes(dir.file(file), testing::EncodeSafetensors(tensors));
}

TensorBlob* FindBlob(std::vector<TensorBlob>& tensors, const std::string& name) {
  for (TensorBlob& t : tensors) {
    if (t.name == name) return &t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

Result<ModelWeights> Load(const std::string& dir, Backend& backend) {
  TF_ASSIGN_OR_RETURN(const ModelConfig config, LoadModelConfig(dir));
  TF_ASSIGN_OR_RETURN(auto ckpt, Checkpoint::Open(dir));
  return LoadWeights(config, *ckpt, backend);
}

// A checkpoint tensor's values as floats.
std::vector<float> Values(const Checkpoint& ckpt, const std::string& name) {
  auto t = ckpt.Find(name);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) return {};
  const DType dtype = t->dtype == SafeDType::kBF16  ? DType::kBF16
                      : t->dtype == SafeDType::kF16 ? DType::kF16
                                                    : DType::kF32;
  std::vector<float> out(t->numel());
  ConvertHost(t->data, dtype, out.data(), DType::kF32, t->numel());
  return out;
}

// Elements [begin, begin + n) of a device tensor (CPU memory) as floats.
std::vector<float> Slice(const Tensor& t, int64_t begin, int64_t n) {
  std::vector<float> out(n);
  ConvertHost(static_cast<const char*>(t.data) + begin * DTypeSize(t.dtype), t.dtype, out.data(),
              DType::kF32, n);
  return out;
}

TEST(ModelWeightsTest, FusedLayoutsHoldTheCheckpointTensorsInOrder) {
  auto backend = Cpu();
  const std::string dir = Golden("llama_bias_tied_f16");
  ASSERT_OK_AND_ASSIGN(const ModelConfig c, LoadModelConfig(dir));
  ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpoint::Open(dir));
  ASSERT_OK_AND_ASSIGN(const ModelWeights w, LoadWeights(c, *ckpt, *backend));
  ASSERT_EQ(w.layers.size(), static_cast<size_t>(c.num_layers));
  EXPECT_EQ(w.lm_head.data, w.embed.data) << "tied embeddings share memory";
  EXPECT_EQ(w.embed.dtype, DType::kF16) << "the CPU keeps matrices in the checkpoint dtype";
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), in = c.intermediate_size;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    SCOPED_TRACE(l);
    const LayerWeights& L = w.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    EXPECT_EQ(L.qkv.ShapeString(),
              "[" + std::to_string(q + 2 * kv) + ", " + std::to_string(h) + "]");
    EXPECT_EQ(Slice(L.qkv, 0, q * h), Values(*ckpt, p + "self_attn.q_proj.weight"));
    EXPECT_EQ(Slice(L.qkv, q * h, kv * h), Values(*ckpt, p + "self_attn.k_proj.weight"));
    EXPECT_EQ(Slice(L.qkv, (q + kv) * h, kv * h), Values(*ckpt, p + "self_attn.v_proj.weight"));
    ASSERT_FALSE(L.qkv_bias.empty());
    EXPECT_EQ(L.qkv_bias.dtype, DType::kF32) << "vectors are f32";
    EXPECT_EQ(Slice(L.qkv_bias, q, kv), Values(*ckpt, p + "self_attn.k_proj.bias"));
    EXPECT_EQ(Slice(L.gate_up, 0, in * h), Values(*ckpt, p + "mlp.gate_proj.weight"));
    EXPECT_EQ(Slice(L.gate_up, in * h, in * h), Values(*ckpt, p + "mlp.up_proj.weight"));
    EXPECT_EQ(Slice(L.down, 0, h * in), Values(*ckpt, p + "mlp.down_proj.weight"));
    EXPECT_EQ(Slice(L.input_norm, 0, h), Values(*ckpt, p + "input_layernorm.weight"));
  }
}

TEST(ModelWeightsTest, PerExpertTensorsAreStackedGateThenUp) {
  auto backend = Cpu();
  for (const char* name : {"qwen3_moe_per_expert", "mixtral_per_expert_sharded"}) {
    SCOPED_TRACE(name);
    const std::string dir = Golden(name);
    ASSERT_OK_AND_ASSIGN(const ModelConfig c, LoadModelConfig(dir));
    ASSERT_OK_AND_ASSIGN(auto ckpt, Checkpoint::Open(dir));
    ASSERT_OK_AND_ASSIGN(const ModelWeights w, LoadWeights(c, *ckpt, *backend));
    const bool mixtral = c.arch == Architecture::kMixtral;
    const int64_t h = c.hidden_size, in = c.moe_intermediate_size;
    for (int64_t l = 0; l < c.num_layers; ++l) {
      if (!c.IsMoeLayer(l)) continue;
      const LayerWeights& L = w.layers[l];
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string p = "model.layers." + std::to_string(l) +
                              (mixtral ? ".block_sparse_moe.experts." : ".mlp.experts.") +
                              std::to_string(e) + ".";
        const int64_t base = e * 2 * in * h;
        EXPECT_EQ(Slice(L.experts_gate_up, base, in * h),
                  Values(*ckpt, p + (mixtral ? "w1.weight" : "gate_proj.weight")));
        EXPECT_EQ(Slice(L.experts_gate_up, base + in * h, in * h),
                  Values(*ckpt, p + (mixtral ? "w3.weight" : "up_proj.weight")));
        EXPECT_EQ(Slice(L.experts_down, e * h * in, h * in),
                  Values(*ckpt, p + (mixtral ? "w2.weight" : "down_proj.weight")));
      }
    }
  }
}

TEST(ModelWeightsTest, FusedAndPerExpertLayoutsLoadIdentically) {
  // Rewrite the per-expert checkpoint in the fused layout transformers 5 uses; the loaded
  // weights must be byte for byte the same.
  ScopedTempDir dir("fused_from_per_expert");
  testing::CopyGoldenModel("qwen3_moe_per_expert", dir);
  ASSERT_OK_AND_ASSIGN(const ModelConfig c, LoadModelConfig(dir.path()));
  EditTensors(dir, "model.safetensors", [&](std::vector<TensorBlob>& tensors) {
    for (int64_t l = 0; l < c.num_layers; ++l) {
      if (!c.IsMoeLayer(l)) continue;
      const std::string p = "model.layers." + std::to_string(l) + ".mlp.experts.";
      TensorBlob gate_up{
          p + "gate_up_proj", "", {c.num_experts, 2 * c.moe_intermediate_size, c.hidden_size}, ""};
      TensorBlob down{
          p + "down_proj", "", {c.num_experts, c.hidden_size, c.moe_intermediate_size}, ""};
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string ep = p + std::to_string(e) + ".";
        for (const char* part : {"gate_proj", "up_proj", "down_proj"}) {
          auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorBlob& t) {
            return t.name == ep + part + ".weight";
          });
          ASSERT_NE(it, tensors.end());
          TensorBlob& dst = std::string(part) == "down_proj" ? down : gate_up;
          dst.dtype = it->dtype;
          dst.data += it->data;
          tensors.erase(it);
        }
      }
      tensors.push_back(gate_up);
      tensors.push_back(down);
    }
  });
  auto backend = Cpu();
  ASSERT_OK_AND_ASSIGN(const ModelWeights per_expert,
                       Load(Golden("qwen3_moe_per_expert"), *backend));
  ASSERT_OK_AND_ASSIGN(const ModelWeights fused, Load(dir.path(), *backend));
  EXPECT_EQ(fused.bytes, per_expert.bytes);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    if (!c.IsMoeLayer(l)) continue;
    for (auto member : {&LayerWeights::experts_gate_up, &LayerWeights::experts_down}) {
      const Tensor& a = fused.layers[l].*member;
      const Tensor& b = per_expert.layers[l].*member;
      ASSERT_EQ(a.ShapeString(), b.ShapeString());
      EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes()), 0) << "layer " << l;
    }
  }
}

TEST(ModelWeightsTest, TensorDataAtAnyAlignmentLoadsTheSameWeights) {
  // safetensors does not align the data after the header; files written without padding put
  // every tensor at an odd address for half of all header lengths. A __metadata__ entry of
  // 0..7 characters moves the data through every residue mod 8.
  auto backend = Cpu();
  const char* kModel = "llama_bias_tied_f16";  // f16 matrices, f16 norms and biases widened to f32
  ASSERT_OK_AND_ASSIGN(const ModelWeights want, Load(Golden(kModel), *backend));
  std::vector<TensorBlob> tensors =
      testing::DecodeSafetensors(testing::ReadFileBytes(Golden(kModel) + "/model.safetensors"));
  std::set<uint64_t> residues;
  for (int pad = 0; pad < 8; ++pad) {
    SCOPED_TRACE(pad);
    ScopedTempDir dir("unaligned");
    testing::CopyGoldenModel(kModel, dir);
    const std::string bytes =
        testing::EncodeSafetensors(tensors, Json{{"pad", std::string(pad, 'x')}});
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = header_len << 8 | static_cast<uint8_t>(bytes[i]);
    residues.insert((8 + header_len) % 8);
    testing::WriteFileBytes(dir.file("model.safetensors"), bytes);
    ASSERT_OK_AND_ASSIGN(const ModelWeights got, Load(dir.path(), *backend));
    ASSERT_EQ(got.buffers.size(), want.buffers.size());
    for (size_t b = 0; b < got.buffers.size(); ++b) {
      ASSERT_EQ(got.buffers[b].bytes(), want.buffers[b].bytes());
      EXPECT_EQ(std::memcmp(got.buffers[b].data(), want.buffers[b].data(), got.buffers[b].bytes()),
                0)
          << "buffer " << b;
    }
  }
  EXPECT_EQ(residues.size(), 8u) << "the data start did not take every alignment";
}

// ---- errors name the tensor and the file ------------------------------------------------------

class BrokenCheckpointTest : public ::testing::Test {
 protected:
  static constexpr const char* kModel = "llama_gqa4_llama3rope_classic";
  static constexpr const char* kTensor = "model.layers.1.self_attn.k_proj.weight";
  void SetUp() override {
    dir_ = std::make_unique<ScopedTempDir>("broken_ckpt");
    testing::CopyGoldenModel(kModel, *dir_);
    backend_ = Cpu();
  }
  void Edit(const std::function<void(std::vector<TensorBlob>&)>& edit) {
    EditTensors(*dir_, "model.safetensors", edit);
  }
  // The load fails with `code`; the message names `kTensor`-or-`name`, the file and `more`.
  void ExpectLoadError(StatusCode code, const std::string& name, const std::string& more) {
    const auto w = Load(dir_->path(), *backend_);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), code) << w.status().ToString();
    EXPECT_NE(w.status().message().find("'" + name + "'"), std::string::npos)
        << w.status().message();
    EXPECT_NE(w.status().message().find(dir_->file("model.safetensors")), std::string::npos)
        << w.status().message();
    EXPECT_NE(w.status().message().find(more), std::string::npos) << w.status().message();
  }
  std::unique_ptr<ScopedTempDir> dir_;
  std::unique_ptr<Backend> backend_;
};

TEST_F(BrokenCheckpointTest, TheUnmodifiedCopyLoads) { EXPECT_OK(Load(dir_->path(), *backend_)); }

TEST_F(BrokenCheckpointTest, MissingTensor) {
  Edit([](std::vector<TensorBlob>& t) {
    t.erase(
        std::find_if(t.begin(), t.end(), [](const TensorBlob& b) { return b.name == kTensor; }));
  });
  ExpectLoadError(StatusCode::kNotFound, kTensor, "not found");
}

TEST_F(BrokenCheckpointTest, WrongShape) {
  Edit([](std::vector<TensorBlob>& t) {
    TensorBlob* b = FindBlob(t, kTensor);
    std::swap(b->shape[0], b->shape[1]);  // same bytes, transposed shape
  });
  ExpectLoadError(StatusCode::kInvalidArgument, kTensor, "expected");
}

TEST_F(BrokenCheckpointTest, IntegerDType) {
  Edit([](std::vector<TensorBlob>& t) {
    TensorBlob* b = FindBlob(t, kTensor);
    ASSERT_EQ(b->dtype, "BF16");
    b->dtype = "I16";  // same size, not a float
  });
  ExpectLoadError(StatusCode::kInvalidArgument, kTensor, "I16");
}

TEST_F(BrokenCheckpointTest, UnknownDTypeOfAUsedTensor) {
  Edit([](std::vector<TensorBlob>& t) {
    TensorBlob* b = FindBlob(t, kTensor);
    b->dtype = "F8_E4M3";
    b->data.resize(b->data.size() / 2);
  });
  ExpectLoadError(StatusCode::kInvalidArgument, kTensor, "F8_E4M3");
}

TEST_F(BrokenCheckpointTest, NonFloatEmbedding) {
  Edit([](std::vector<TensorBlob>& t) { FindBlob(t, "model.embed_tokens.weight")->dtype = "I16"; });
  ExpectLoadError(StatusCode::kInvalidArgument, "model.embed_tokens.weight", "I16");
}

TEST_F(BrokenCheckpointTest, UnusedTensorsOfAnyDTypeAreIgnored) {
  Edit([](std::vector<TensorBlob>& t) {
    t.push_back({"model.layers.0.self_attn.k_scale", "F8_E4M3", {4}, std::string(4, '\0')});
    t.push_back({"model.rotary_emb.inv_freq", "I64", {2}, std::string(16, '\0')});
  });
  EXPECT_OK(Load(dir_->path(), *backend_));
}

// ---- dummy weights ----------------------------------------------------------------------------

TEST(DummyWeightsTest, SeededShapedAndInitialisedLikeHf) {
  auto backend = Cpu();
  ASSERT_OK_AND_ASSIGN(const ModelConfig c, LoadModelConfig(Golden("llama_bias_tied_f16")));
  ASSERT_OK_AND_ASSIGN(const ModelWeights a, MakeDummyWeights(c, 7, *backend));
  ASSERT_OK_AND_ASSIGN(const ModelWeights b, MakeDummyWeights(c, 7, *backend));
  ASSERT_OK_AND_ASSIGN(const ModelWeights other, MakeDummyWeights(c, 8, *backend));
  ASSERT_EQ(a.embed.bytes(), b.embed.bytes());
  EXPECT_EQ(std::memcmp(a.embed.data, b.embed.data, a.embed.bytes()), 0) << "same seed";
  EXPECT_NE(std::memcmp(a.embed.data, other.embed.data, a.embed.bytes()), 0) << "other seed";
  EXPECT_EQ(a.embed.dtype, DType::kBF16);
  EXPECT_EQ(a.lm_head.data, a.embed.data) << "tied";
  // Norms 1, biases 0, matrices with std 0.02.
  EXPECT_EQ(Slice(a.final_norm, 0, c.hidden_size), std::vector<float>(c.hidden_size, 1.0f));
  const LayerWeights& L = a.layers[0];
  EXPECT_EQ(Slice(L.qkv_bias, 0, L.qkv_bias.numel()), std::vector<float>(L.qkv_bias.numel(), 0.0f));
  const std::vector<float> e = Slice(a.embed, 0, a.embed.numel());
  double sum = 0.0, sum_sq = 0.0;
  for (float x : e) {
    sum += x;
    sum_sq += double(x) * x;
  }
  const double mean = sum / e.size(), std = std::sqrt(sum_sq / e.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(std, 0.02, 0.002);
}

TEST(DummyWeightsTest, AModelThatCannotFitIsRefusedUpFront) {
  // ~4 TB of embeddings: more than any test machine has, refused before allocating anything.
  ModelConfig c;
  c.vocab_size = 16'000'000;
  c.hidden_size = 131072;
  c.intermediate_size = 16;
  c.num_layers = 1;
  c.num_heads = 1;
  c.num_kv_heads = 1;
  c.head_dim = 16;
  c.sliding_window = {0};
  ASSERT_OK(c.Validate());
  auto backend = Cpu();
  const auto w = MakeDummyWeights(c, 0, *backend);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kResourceExhausted) << w.status().ToString();
  EXPECT_NE(w.status().message().find("GB"), std::string::npos) << w.status().message();
}

}  // namespace
}  // namespace tokenfab
