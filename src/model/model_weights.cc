#include "model/model_weights.h"

#include <cmath>
#include <string>
#include <vector>

#include "backend/host_convert.h"
#include "base/progress.h"
#include "base/random.h"
#include "base/thread_pool.h"

namespace tokenfab {
namespace {

// One checkpoint tensor, or a stretch of one, that fills part of a device tensor.
struct WeightPart {
  std::string name;
  std::vector<int64_t> shape;
};

enum class DummyInit { kRandom, kOnes, kZeros };

// One device tensor and the checkpoint tensors concatenated (in order) to fill it.
struct WeightSpec {
  Tensor* dest;
  bool is_vector;  // f32 on every backend
  std::vector<int64_t> shape;
  std::vector<WeightPart> parts;
  DummyInit init = DummyInit::kRandom;
};

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

class PlanBuilder {
 public:
  explicit PlanBuilder(std::vector<WeightSpec>* specs) : specs_(specs) {}

  void Matrix(Tensor* dest, std::vector<int64_t> shape, std::vector<WeightPart> parts) {
    specs_->push_back({dest, false, std::move(shape), std::move(parts), DummyInit::kRandom});
  }
  void Vector(Tensor* dest, int64_t n, std::vector<WeightPart> parts, DummyInit init) {
    specs_->push_back({dest, true, {n}, std::move(parts), init});
  }

 private:
  std::vector<WeightSpec>* specs_;
};

// How the experts of one MoE layer are stored in the checkpoint.
struct MoeLayout {
  std::string prefix;   // "model.layers.3.mlp" or "...block_sparse_moe"
  bool fused = true;
  std::string gate, up, down;  // per-expert names: gate_proj/up_proj/down_proj or w1/w3/w2
};

MoeLayout DetectMoeLayout(const Checkpoint* ckpt, const std::string& layer_prefix) {
  MoeLayout layout{layer_prefix + "mlp", true, "", "", ""};
  if (ckpt == nullptr) return layout;  // dummy weights: fused
  for (const char* block : {"mlp", "block_sparse_moe"}) {
    const std::string p = layer_prefix + block;
    if (ckpt->Has(p + ".experts.gate_up_proj")) return {p, true, "", "", ""};
    if (ckpt->Has(p + ".experts.0.gate_proj.weight")) {
      return {p, false, "gate_proj", "up_proj", "down_proj"};
    }
    if (ckpt->Has(p + ".experts.0.w1.weight")) return {p, false, "w1", "w3", "w2"};
  }
  return layout;  // reported as the fused names when loading fails to find them
}

std::vector<WeightSpec> BuildPlan(const ModelConfig& c, ModelWeights& w, const Checkpoint* ckpt) {
  std::vector<WeightSpec> specs;
  PlanBuilder plan(&specs);
  const int64_t h = c.hidden_size, v = c.vocab_size, d = c.head_dim;
  const int64_t q = c.q_size(), kv = c.kv_size(), qkv = q + 2 * kv;
  w.layers.resize(c.num_layers);

  plan.Matrix(&w.embed, {v, h}, {{"model.embed_tokens.weight", {v, h}}});
  plan.Vector(&w.final_norm, h, {{"model.norm.weight", {h}}}, DummyInit::kOnes);
  if (!c.tie_word_embeddings) plan.Matrix(&w.lm_head, {v, h}, {{"lm_head.weight", {v, h}}});

  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::string a = p + "self_attn.";
    plan.Vector(&L.input_norm, h, {{p + "input_layernorm.weight", {h}}}, DummyInit::kOnes);
    plan.Vector(&L.post_attention_norm, h, {{p + "post_attention_layernorm.weight", {h}}},
                DummyInit::kOnes);
    plan.Matrix(&L.qkv, {qkv, h},
                {{a + "q_proj.weight", {q, h}},
                 {a + "k_proj.weight", {kv, h}},
                 {a + "v_proj.weight", {kv, h}}});
    if (c.qkv_bias) {
      plan.Vector(&L.qkv_bias, qkv,
                  {{a + "q_proj.bias", {q}}, {a + "k_proj.bias", {kv}}, {a + "v_proj.bias", {kv}}},
                  DummyInit::kZeros);
    }
    plan.Matrix(&L.o, {h, q}, {{a + "o_proj.weight", {h, q}}});
    if (c.o_bias) plan.Vector(&L.o_bias, h, {{a + "o_proj.bias", {h}}}, DummyInit::kZeros);
    if (c.qk_norm) {
      plan.Vector(&L.q_norm, d, {{a + "q_norm.weight", {d}}}, DummyInit::kOnes);
      plan.Vector(&L.k_norm, d, {{a + "k_norm.weight", {d}}}, DummyInit::kOnes);
    }
    if (c.IsMoeLayer(l)) {
      const int64_t e = c.num_experts, i = c.moe_intermediate_size;
      const MoeLayout m = DetectMoeLayout(ckpt, p);
      plan.Matrix(&L.router, {e, h}, {{m.prefix + ".gate.weight", {e, h}}});
      if (m.fused) {
        plan.Matrix(&L.experts_gate_up, {e, 2 * i, h},
                    {{m.prefix + ".experts.gate_up_proj", {e, 2 * i, h}}});
        plan.Matrix(&L.experts_down, {e, h, i}, {{m.prefix + ".experts.down_proj", {e, h, i}}});
      } else {
        std::vector<WeightPart> gate_up, down;
        for (int64_t x = 0; x < e; ++x) {
          const std::string ep = m.prefix + ".experts." + std::to_string(x) + ".";
          gate_up.push_back({ep + m.gate + ".weight", {i, h}});
          gate_up.push_back({ep + m.up + ".weight", {i, h}});
          down.push_back({ep + m.down + ".weight", {h, i}});
        }
        plan.Matrix(&L.experts_gate_up, {e, 2 * i, h}, std::move(gate_up));
        plan.Matrix(&L.experts_down, {e, h, i}, std::move(down));
      }
    } else {
      const int64_t i = c.intermediate_size;
      const std::string m = p + "mlp.";
      plan.Matrix(&L.gate_up, {2 * i, h},
                  {{m + "gate_proj.weight", {i, h}}, {m + "up_proj.weight", {i, h}}});
      plan.Matrix(&L.down, {h, i}, {{m + "down_proj.weight", {h, i}}});
      if (c.mlp_bias) {
        plan.Vector(&L.gate_up_bias, 2 * i,
                    {{m + "gate_proj.bias", {i}}, {m + "up_proj.bias", {i}}}, DummyInit::kZeros);
        plan.Vector(&L.down_bias, h, {{m + "down_proj.bias", {h}}}, DummyInit::kZeros);
      }
    }
  }
  return specs;
}

Tensor MakeTensorView(void* data, DType dtype, const std::vector<int64_t>& shape) {
  switch (shape.size()) {
    case 1: return Tensor(data, dtype, {shape[0]});
    case 2: return Tensor(data, dtype, {shape[0], shape[1]});
    default: return Tensor(data, dtype, {shape[0], shape[1], shape[2]});
  }
}

Result<DType> ToDType(const HostTensor& t) {
  switch (t.dtype) {
    case SafeDType::kF32: return DType::kF32;
    case SafeDType::kBF16: return DType::kBF16;
    case SafeDType::kF16: return DType::kF16;
    default: break;
  }
  return InvalidArgumentError(t.file + ": tensor '" + t.name + "' has dtype " + t.dtype_name +
                              "; weights must be BF16, F16 or F32");
}

Status AllocateSpec(const WeightSpec& spec, DType dtype, Backend& backend, ModelWeights& w,
                    void** data) {
  const size_t bytes = static_cast<size_t>(Numel(spec.shape)) * DTypeSize(dtype);
  TF_ASSIGN_OR_RETURN(DeviceBuffer buffer, backend.Allocate(bytes));
  *data = buffer.data();
  *spec.dest = MakeTensorView(buffer.data(), dtype, spec.shape);
  w.bytes += bytes;
  w.buffers.push_back(std::move(buffer));
  return Status::Ok();
}

void TieEmbeddings(const ModelConfig& c, ModelWeights& w) {
  if (c.tie_word_embeddings) w.lm_head = w.embed;
}

std::string FormatBytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

// Refuses up front a model that cannot fit, instead of failing (or being killed) half-way.
Status CheckFits(const std::vector<WeightSpec>& specs, DType matrix_dtype, Backend& backend) {
  uint64_t total = 0;
  for (const WeightSpec& spec : specs) {
    total += static_cast<uint64_t>(Numel(spec.shape)) *
             DTypeSize(spec.is_vector ? DType::kF32 : matrix_dtype);
  }
  const uint64_t free = backend.FreeMemoryBytes();
  if (total > free) {
    return ResourceExhaustedError("the weights need " + FormatBytes(total) + " of " +
                                  std::string(backend.name()) + " memory; " + FormatBytes(free) +
                                  " is free");
  }
  return Status::Ok();
}

}  // namespace

Result<ModelWeights> LoadWeights(const ModelConfig& config, const Checkpoint& checkpoint,
                                 Backend& backend) {
  ModelWeights w;
  const std::vector<WeightSpec> specs = BuildPlan(config, w, &checkpoint);
  TF_ASSIGN_OR_RETURN(const HostTensor embed, checkpoint.Find("model.embed_tokens.weight"));
  TF_ASSIGN_OR_RETURN(const DType stored, ToDType(embed));
  const DType matrix_dtype = backend.WeightDType(stored);
  TF_RETURN_IF_ERROR(CheckFits(specs, matrix_dtype, backend));

  ProgressBar progress("loading weights", static_cast<int64_t>(specs.size()));
  std::vector<uint8_t> staging;
  for (size_t s = 0; s < specs.size(); ++s) {
    const WeightSpec& spec = specs[s];
    const DType dtype = spec.is_vector ? DType::kF32 : matrix_dtype;
    staging.resize(static_cast<size_t>(Numel(spec.shape)) * DTypeSize(dtype));
    size_t offset = 0;
    for (const WeightPart& part : spec.parts) {
      TF_ASSIGN_OR_RETURN(const HostTensor t, checkpoint.Find(part.name));
      if (t.shape != part.shape) {
        return InvalidArgumentError(t.file + ": tensor '" + t.name + "' has shape " +
                                    t.ShapeString() + ", expected " + ShapeString(part.shape));
      }
      TF_ASSIGN_OR_RETURN(const DType src_dtype, ToDType(t));
      ConvertHost(t.data, src_dtype, staging.data() + offset, dtype, t.numel());
      offset += static_cast<size_t>(t.numel()) * DTypeSize(dtype);
    }
    void* data = nullptr;
    TF_RETURN_IF_ERROR(AllocateSpec(spec, dtype, backend, w, &data));
    TF_RETURN_IF_ERROR(backend.CopyToDevice(data, staging.data(), staging.size()));
    progress.Update(static_cast<int64_t>(s + 1), FormatBytes(w.bytes));
  }
  TF_RETURN_IF_ERROR(backend.Synchronize());
  progress.Done(FormatBytes(w.bytes));
  TieEmbeddings(config, w);
  return w;
}

Result<ModelWeights> MakeDummyWeights(const ModelConfig& config, uint64_t seed, Backend& backend) {
  ModelWeights w;
  const std::vector<WeightSpec> specs = BuildPlan(config, w, nullptr);
  const DType matrix_dtype = backend.WeightDType(DType::kBF16);
  TF_RETURN_IF_ERROR(CheckFits(specs, matrix_dtype, backend));
  // Uniform on [-a, a] has std a / sqrt(3): std 0.02 like HF's initializer_range.
  const float scale = 0.02f * std::sqrt(3.0f);
  ProgressBar progress("generating dummy weights", static_cast<int64_t>(specs.size()));
  std::vector<uint8_t> staging;
  for (size_t s = 0; s < specs.size(); ++s) {
    const WeightSpec& spec = specs[s];
    const DType dtype = spec.is_vector ? DType::kF32 : matrix_dtype;
    const int64_t n = Numel(spec.shape);
    staging.resize(static_cast<size_t>(n) * DTypeSize(dtype));
    ThreadPool::Default().ParallelFor(
        n,
        [&](int64_t begin, int64_t end) {
          std::vector<float> values(end - begin);
          for (int64_t i = begin; i < end; ++i) {
            float& x = values[i - begin];
            switch (spec.init) {
              case DummyInit::kOnes: x = 1.0f; break;
              case DummyInit::kZeros: x = 0.0f; break;
              case DummyInit::kRandom: x = scale * UniformSymmetricFloat(seed, s, i); break;
            }
          }
          ConvertHost(values.data(), DType::kF32, staging.data() + begin * DTypeSize(dtype), dtype,
                      end - begin);
        },
        /*min_chunk=*/1 << 16);
    void* data = nullptr;
    TF_RETURN_IF_ERROR(AllocateSpec(spec, dtype, backend, w, &data));
    TF_RETURN_IF_ERROR(backend.CopyToDevice(data, staging.data(), staging.size()));
    progress.Update(static_cast<int64_t>(s + 1), FormatBytes(w.bytes));
  }
  TF_RETURN_IF_ERROR(backend.Synchronize());
  progress.Done(FormatBytes(w.bytes));
  TieEmbeddings(config, w);
  return w;
}

}  // namespace tokenfab
