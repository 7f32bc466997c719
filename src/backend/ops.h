// Ops: the math a forward pass needs, implemented once per backend.
//
// Every op reads and writes tensors in the backend's memory and may run asynchronously on the
// backend's stream (the CPU backend runs synchronously). "act" below is the backend's
// activation dtype (Backend::activation_dtype(): f32 on CPU, bf16 on CUDA); "w" is a weight
// dtype the backend accepts for matrices (bf16, f16 or f32); vectors such as norm weights and
// biases are always f32. Accumulation is always in f32. "act|f32" marks operands that may also
// be f32 on a bf16 backend: the residual stream is kept in f32 so rounding does not build up
// over the layers, and MoE routers read f32 inputs so near-ties between experts are decided
// as the f32 reference decides them. Ops return InvalidArgument for shapes
// or dtypes they do not support; they never allocate on a path that runs per step, except
// where noted. Thread-safety: one thread drives a backend's ops at a time.
//
// Weights (matrices, norm weights, biases, RoPE frequencies) and the attention metadata stay
// unchanged while the ops of a forward run: the CUDA kernels read them before waiting for the
// kernel before them (programmatic dependent launch), which is only correct because no op of
// the same forward writes them.
#pragma once

#include "backend/attention_metadata.h"
#include "backend/tensor.h"
#include "base/status.h"

namespace tokenfab {

// Q/K/V projection output -> normalised, rotated Q and K/V written into the paged cache.
struct QkvArgs {
  Tensor qkv;         // act [T, (Hq + 2*Hkv) * D]: per row q heads, then k heads, then v heads
  Tensor q_norm;      // f32 [D] or empty: per-head RMSNorm of q before RoPE (Qwen3)
  Tensor k_norm;      // f32 [D] or empty: per-head RMSNorm of k before RoPE
  float norm_eps = 1e-6f;
  Tensor inv_freq;    // f32 [D/2]: RoPE inverse frequencies (scaling already applied)
  Tensor q_out;       // act [T, Hq * D]: rotated queries
  Tensor k_cache;     // kv [num_blocks, block_size, Hkv, D]
  Tensor v_cache;     // kv [num_blocks, block_size, Hkv, D]
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
};

struct AttentionArgs {
  Tensor q;        // act [T, Hq * D]
  Tensor k_cache;  // kv [num_blocks, block_size, Hkv, D], the new tokens already written
  Tensor v_cache;  // kv [num_blocks, block_size, Hkv, D]
  Tensor out;      // act [T, Hq * D]
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;      // softmax scale, usually D^-0.5
  int sliding_window = 0;  // > 0: a query at position p sees keys at positions > p - window
};

struct MoeArgs {
  Tensor x;            // act|f32 [T, H]
  Tensor expert_ids;   // i32 [T, K]: from MoeRoute
  Tensor expert_weights;  // f32 [T, K]
  Tensor gate_up;      // w [E, 2I, H]: per expert, gate rows then up rows
  Tensor down;         // w [E, H, I]
  Tensor residual;     // f32 [T, H]: += sum_k weight_k * down_e(silu(gate_e x) * up_e x)
};

// A block's whole MoE MLP: x = RmsNorm(residual) in f32, routed by MoeRoute over
// x @ router^T, then MoeExperts of x added into the residual.
struct MoeBlockArgs {
  Tensor residual;     // f32 [T, H]: read through the norm, then the experts' sum added in
  Tensor norm_weight;  // f32 [H]
  float norm_eps = 1e-6f;
  Tensor router;       // w [E, H]
  bool normalize = false;  // renormalise the top-k weights to sum to 1
  Tensor gate_up;      // w [E, 2I, H]: per expert, gate rows then up rows
  Tensor down;         // w [E, H, I]
  // The intermediate results, also written: the normalised rows, the router logits and the
  // routing (MoeRoute's outputs).
  Tensor normed;          // f32 [T, H]
  Tensor logits;          // f32 [T, E]
  Tensor expert_ids;      // i32 [T, K]: K is the number of experts per token
  Tensor expert_weights;  // f32 [T, K]
};

// One projection of a ProjectionChain: NormMatMul when norm_weight is set, else MatMulAdd when
// accumulate is set, else MatMul, each with that op's shapes and meaning.
struct ProjectionStage {
  Tensor x;            // NormMatMul: f32 [M, K] (the residual stream); otherwise act|f32 [M, K]
  Tensor norm_weight;  // f32 [K] or empty
  float norm_eps = 1e-6f;
  Tensor w;                 // [N, K]
  Tensor bias;              // f32 [N] or empty
  bool gated = false;       // NormMatMul's gated form (needs norm_weight)
  bool accumulate = false;  // MatMulAdd: out is the f32 residual, out += x @ w^T
  Tensor out;
};

class Ops {
 public:
  virtual ~Ops() = default;

  // out[t] = table[ids[t]]. ids i32 [T]; table w [V, H]; out act|f32 [T, H].
  // InvalidArgument if an id is outside [0, V) (checked on the host side by callers on GPU).
  virtual Status Embedding(const Tensor& ids, const Tensor& table, const Tensor& out) = 0;

  // out = x / rms(x) * weight, row-wise. x, out act|f32 [N, W]; weight f32 [W].
  virtual Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) = 0;

  // out = x @ w^T (+ bias). x act|f32 [M, K]; w [N, K]; bias f32 [N] or empty; out act|f32 [M, N].
  virtual Status MatMul(const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Tensor& out) = 0;

  // A block's input projection: y = RmsNorm(x, norm_weight) @ w^T (+ bias), the normalised
  // rows rounded to act as RmsNorm would store them. x f32 [M, K] (the residual stream);
  // norm_weight f32 [K]; w [N, K]. Plain: out act|f32 [M, N] = y. With `gated` (an MLP's gate
  // and up projections, w's first N/2 rows the gate's): out act [M, N/2] = silu(y[:, :N/2]) *
  // y[:, N/2:], y rounded to act first and the product rounded to act.
  virtual Status NormMatMul(const Tensor& x, const Tensor& norm_weight, float eps,
                            const Tensor& w, const Tensor& bias, bool gated,
                            const Tensor& out) = 0;

  // A block's output projection added into the residual: residual += x @ w^T (+ bias).
  // x act [M, K]; w [N, K]; residual f32 [M, N].
  virtual Status MatMulAdd(const Tensor& x, const Tensor& w, const Tensor& bias,
                           const Tensor& residual) = 0;

  // Consecutive projections run in order, each seeing the outputs of those before (a block's
  // output projection, the next block's MLP, the next layer's input projection). A backend may
  // stream their weights as one kernel; ComposeProjectionChain (op_composition.h) runs them one
  // by one. A stage's out must not alias its own x.
  virtual Status ProjectionChain(const ProjectionStage* stages, int count) = 0;

  // Splits qkv, applies q/k norm and RoPE at meta.positions, writes K/V at meta.slot_mapping.
  virtual Status PrepareQkv(const QkvArgs& args, const AttentionMetadata& meta) = 0;

  // Causal attention of each new token over its sequence's cached keys (GQA: query head h
  // reads kv head h / (Hq / Hkv)).
  virtual Status Attention(const AttentionArgs& args, const AttentionMetadata& meta) = 0;

  // Softmax over experts, top-k, optional renormalisation of the k weights to sum to 1.
  // logits f32 or act [T, E]; ids i32 [T, K]; weights f32 [T, K].
  virtual Status MoeRoute(const Tensor& logits, bool normalize, const Tensor& ids,
                          const Tensor& weights) = 0;

  // Routed expert MLPs; see MoeArgs.
  virtual Status MoeExperts(const MoeArgs& args) = 0;

  // RmsNorm, router MatMul, MoeRoute and MoeExperts as one op; see MoeBlockArgs. A backend may
  // fuse them (ComposeMoeBlock in op_composition.h runs them one by one).
  virtual Status MoeBlock(const MoeBlockArgs& args) = 0;

  // out[i] = in[indices[i]]. in act [N, W]; indices i32 [M]; out [M, W].
  virtual Status GatherRows(const Tensor& in, const Tensor& indices, const Tensor& out) = 0;

  // One token per row, by backend/device_sampling.h's rules. logits f32 [R, V]; params
  // [R] DeviceSamplingParams (a u8 tensor of R * 32 bytes); tokens i32 [R]; logprobs f32 [R]:
  // log-softmax of the raw logits at the chosen token.
  virtual Status Sample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                        const Tensor& logprobs) = 0;
};

}  // namespace tokenfab
