#include "bench/roofline.h"

#include <algorithm>
#include <cmath>

namespace tokenfab {
namespace {

double AttentionWeights(const ModelConfig& c) {
  return static_cast<double>(c.hidden_size) * (c.q_size() + 2 * c.kv_size()) +
         static_cast<double>(c.q_size()) * c.hidden_size;
}

double ExpertWeights(const ModelConfig& c) {
  return 3.0 * c.hidden_size * c.moe_intermediate_size;
}

double DenseMlpWeights(const ModelConfig& c) { return 3.0 * c.hidden_size * c.intermediate_size; }

}  // namespace

double DecodeWeightBytes(const ModelConfig& c, int batch, int bytes) {
  double elements = static_cast<double>(c.vocab_size) * c.hidden_size;  // lm_head
  elements += static_cast<double>(batch) * c.hidden_size;              // embedding rows
  for (int64_t l = 0; l < c.num_layers; ++l) {
    elements += AttentionWeights(c);
    if (c.IsMoeLayer(l)) {
      const double e = static_cast<double>(c.num_experts);
      const double hit = e * (1.0 - std::pow(1.0 - c.num_experts_per_tok / e, batch));
      elements += e * c.hidden_size + hit * ExpertWeights(c);
    } else {
      elements += DenseMlpWeights(c);
    }
  }
  return elements * bytes;
}

double DecodeKvBytes(const ModelConfig& c, int batch, int context, int bytes) {
  return static_cast<double>(batch) * context * c.num_layers * 2.0 * c.kv_size() * bytes;
}

double PrefillFlops(const ModelConfig& c, int tokens, int prefix) {
  double per_token = static_cast<double>(c.vocab_size) * c.hidden_size;  // lm_head, last row
  per_token /= tokens;  // only the last token's logits are computed
  double active = 0.0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    active += AttentionWeights(c);
    active += c.IsMoeLayer(l) ? static_cast<double>(c.num_experts) * c.hidden_size +
                                    c.num_experts_per_tok * ExpertWeights(c)
                              : DenseMlpWeights(c);
  }
  const double matmul = 2.0 * tokens * (active + per_token);
  // Causal: new token i attends to prefix + i + 1 keys (at most the window); QK^T and PV each
  // 2 flops per element per head dim.
  double attention = 0.0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const double window = c.sliding_window[l] > 0 ? static_cast<double>(c.sliding_window[l])
                                                  : static_cast<double>(prefix) + tokens;
    // Keys per query run prefix + 1 .. prefix + tokens, capped at the window.
    const double first = prefix + 1.0, last = static_cast<double>(prefix) + tokens;
    const double below = std::clamp(window, first - 1.0, last);  // the last uncapped count
    const double pairs = (below - first + 1.0) * (first + below) / 2.0 + (last - below) * window;
    attention += 4.0 * pairs * c.num_heads * c.head_dim;
  }
  return matmul + attention;
}

double PrefillBytes(const ModelConfig& c, int tokens, int prefix, int weight_bytes,
                    int kv_bytes) {
  return DecodeWeightBytes(c, tokens, weight_bytes) + DecodeKvBytes(c, 1, prefix, kv_bytes);
}

}  // namespace tokenfab
