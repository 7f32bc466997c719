// The floor of a forward pass from the model's shapes: bytes a decode step must read (weights
// actually touched plus the KV cache) and flops a prefill must do. Divided by a device's
// measured ceilings (backend/device_probe.h) they give the fastest possible time, and the
// fraction of it a measurement reaches.
#pragma once

#include <cstdint>

#include "model/model_config.h"

namespace tokenfab {

// Weight bytes one decode step of `batch` sequences reads: every matrix except the embedding
// table (of which only `batch` rows), and for MoE layers only the experts the batch is
// expected to hit: E * (1 - (1 - k/E)^batch).
double DecodeWeightBytes(const ModelConfig& c, int batch, int weight_bytes_per_element);

// KV cache bytes read by one decode step: every sequence reads its whole context.
double DecodeKvBytes(const ModelConfig& c, int batch, int context, int kv_bytes_per_element);

// Flops of prefilling one prompt of `tokens` tokens after `prefix` tokens already in the KV
// cache (a prefix-cache hit): 2 per active weight per new token, plus the causal attention
// products (QK^T and PV) of the new tokens over the prefix and each other.
double PrefillFlops(const ModelConfig& c, int tokens, int prefix = 0);

// Bytes the same prefill must read at least: every weight once (for MoE layers the experts
// `tokens` tokens are expected to hit) and the prefix's KV once.
double PrefillBytes(const ModelConfig& c, int tokens, int prefix, int weight_bytes_per_element,
                    int kv_bytes_per_element);

}  // namespace tokenfab
