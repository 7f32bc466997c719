// ModelWeights: every weight of a model in one backend's memory, in the layout the forward
// pass wants (q/k/v fused into one matrix, gate/up fused, experts stacked), loaded from a
// checkpoint or generated as seeded dummy weights.
//
// Matrices are kept in Backend::WeightDType(checkpoint dtype); vectors (norms, biases) in f32.
// Both MoE layouts load: the per-expert one of hub checkpoints (mlp.experts.{e}.gate_proj /
// up_proj / down_proj; Mixtral's block_sparse_moe.experts.{e}.w1 / w3 / w2) and the fused one
// transformers 5 writes (mlp.experts.gate_up_proj [E, 2I, H], mlp.experts.down_proj [E, H, I]).
// Thread-safety: immutable after loading.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/checkpoint.h"
#include "model/model_config.h"

namespace tokenfab {

struct LayerWeights {
  Tensor input_norm;           // f32 [H]
  Tensor post_attention_norm;  // f32 [H]
  Tensor qkv;                  // w [(Hq + 2*Hkv) * D, H]: q rows, then k rows, then v rows
  Tensor qkv_bias;             // f32 [(Hq + 2*Hkv) * D] or empty
  Tensor o;                    // w [H, Hq * D]
  Tensor o_bias;               // f32 [H] or empty
  Tensor q_norm;               // f32 [D] or empty (Qwen3)
  Tensor k_norm;               // f32 [D] or empty
  // Dense MLP (when not an MoE layer).
  Tensor gate_up;       // w [2I, H]: gate rows, then up rows
  Tensor gate_up_bias;  // f32 [2I] or empty
  Tensor down;          // w [H, I]
  Tensor down_bias;     // f32 [H] or empty
  // MoE layer.
  Tensor router;           // w [E, H]
  Tensor experts_gate_up;  // w [E, 2I, H]
  Tensor experts_down;     // w [E, H, I]
};

struct ModelWeights {
  Tensor embed;       // w [V, H]
  Tensor final_norm;  // f32 [H]
  Tensor lm_head;     // w [V, H]; the same memory as embed when embeddings are tied
  std::vector<LayerWeights> layers;
  std::vector<DeviceBuffer> buffers;  // owns all of the above
  uint64_t bytes = 0;
};

// Loads and checks every tensor the config needs: NotFound for a missing tensor,
// InvalidArgument for a wrong shape or dtype, each naming the tensor and its file.
Result<ModelWeights> LoadWeights(const ModelConfig& config, const Checkpoint& checkpoint,
                                 Backend& backend);

// Seeded random weights of the right shapes (like vLLM's --load-format dummy): matrices
// uniform with std 0.02, norms 1, biases 0. Matrices are bf16 unless the backend says otherwise.
Result<ModelWeights> MakeDummyWeights(const ModelConfig& config, uint64_t seed, Backend& backend);

}  // namespace tokenfab
