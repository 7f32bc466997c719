// CPU attention over the paged KV cache: Q/K/V preparation (q/k norm, RoPE, cache write) and
// causal softmax attention for a ragged batch. Straightforward loops, parallel over
// (token, head); softmax sums accumulate in double.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/op_checks.h"

namespace tokenfab {
namespace {

// x <- RMSNorm(x) * weight over one head.
void NormalizeHead(float* x, const float* weight, float eps, int d) {
  double sum_sq = 0.0;
  for (int i = 0; i < d; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float inv_rms = 1.0f / std::sqrt(static_cast<float>(sum_sq / d) + eps);
  for (int i = 0; i < d; ++i) x[i] = weight[i] * (x[i] * inv_rms);
}

// The "rotate half" RoPE of HF Llama: pairs (i, i + d/2). Angles are f32 products of the
// position and the inverse frequency, as transformers computes them.
void RotateHead(const float* in, float* out, const float* inv_freq, int32_t position, int d) {
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    const float angle = static_cast<float>(position) * inv_freq[i];
    const float c = std::cos(angle), s = std::sin(angle);
    const float x1 = in[i], x2 = in[i + half];
    out[i] = x1 * c - x2 * s;
    out[i + half] = x2 * c + x1 * s;
  }
}

// Sequence index of every token row, from query_start.
Status TokenToSequence(const AttentionMetadata& meta, std::vector<int32_t>* seq_of_token) {
  const int32_t* qs = meta.query_start.as<int32_t>();
  seq_of_token->assign(meta.num_tokens, -1);
  if (qs[0] != 0 || qs[meta.num_seqs] != meta.num_tokens) {
    return InvalidArgumentError("attention metadata: query_start does not cover the batch");
  }
  for (int32_t s = 0; s < meta.num_seqs; ++s) {
    if (qs[s + 1] < qs[s]) return InvalidArgumentError("attention metadata: query_start decreases");
    for (int32_t t = qs[s]; t < qs[s + 1]; ++t) (*seq_of_token)[t] = s;
  }
  return Status::Ok();
}

}  // namespace

Status CpuOps::PrepareQkv(const QkvArgs& a, const AttentionMetadata& meta) {
  TF_RETURN_IF_ERROR(CheckPrepareQkv(a, meta, DType::kF32));
  const int hq = a.num_q_heads, hkv = a.num_kv_heads, d = a.head_dim;
  const int64_t num_slots = a.k_cache.dim(0) * a.k_cache.dim(1);
  const int32_t* slots = meta.slot_mapping.as<int32_t>();
  const int32_t* positions = meta.positions.as<int32_t>();
  for (int32_t t = 0; t < meta.num_tokens; ++t) {
    if (slots[t] < 0 || slots[t] >= num_slots) {
      return InvalidArgumentError("PrepareQkv: slot " + std::to_string(slots[t]) +
                                  " outside the KV cache");
    }
  }
  const int64_t row = static_cast<int64_t>(hq + 2 * hkv) * d;
  const float* q_norm = a.q_norm.empty() ? nullptr : a.q_norm.as<float>();
  const float* k_norm = a.k_norm.empty() ? nullptr : a.k_norm.as<float>();
  pool_->ParallelFor(meta.num_tokens, [&](int64_t begin, int64_t end) {
    std::vector<float> head(d);
    for (int64_t t = begin; t < end; ++t) {
      const float* src = a.qkv.as<float>() + t * row;
      for (int h = 0; h < hq; ++h) {
        std::copy(src + h * d, src + (h + 1) * d, head.begin());
        if (q_norm) NormalizeHead(head.data(), q_norm, a.norm_eps, d);
        RotateHead(head.data(), a.q_out.as<float>() + (t * hq + h) * d, a.inv_freq.as<float>(),
                   positions[t], d);
      }
      float* k_dst = a.k_cache.as<float>() + static_cast<int64_t>(slots[t]) * hkv * d;
      float* v_dst = a.v_cache.as<float>() + static_cast<int64_t>(slots[t]) * hkv * d;
      for (int g = 0; g < hkv; ++g) {
        const float* k_src = src + (hq + g) * d;
        std::copy(k_src, k_src + d, head.begin());
        if (k_norm) NormalizeHead(head.data(), k_norm, a.norm_eps, d);
        RotateHead(head.data(), k_dst + g * d, a.inv_freq.as<float>(), positions[t], d);
        const float* v_src = src + (hq + hkv + g) * d;
        std::copy(v_src, v_src + d, v_dst + g * d);
      }
    }
  });
  return Status::Ok();
}

Status CpuOps::Attention(const AttentionArgs& a, const AttentionMetadata& meta) {
  TF_RETURN_IF_ERROR(CheckAttention(a, meta, DType::kF32));
  std::vector<int32_t> seq_of_token;
  TF_RETURN_IF_ERROR(TokenToSequence(meta, &seq_of_token));
  const int hq = a.num_q_heads, hkv = a.num_kv_heads, d = a.head_dim;
  const int group = hq / hkv;
  const int32_t bs = meta.block_size;
  const int64_t num_blocks = a.k_cache.dim(0);
  const int32_t* positions = meta.positions.as<int32_t>();
  const int32_t* seq_lens = meta.seq_lens.as<int32_t>();
  const int32_t* tables = meta.block_tables.as<int32_t>();
  for (int32_t t = 0; t < meta.num_tokens; ++t) {
    const int32_t s = seq_of_token[t];
    if (positions[t] < 0 || positions[t] >= seq_lens[s]) {
      return InvalidArgumentError("Attention: position " + std::to_string(positions[t]) +
                                  " outside sequence of length " + std::to_string(seq_lens[s]));
    }
    if ((seq_lens[s] + bs - 1) / bs > meta.max_blocks_per_seq) {
      return InvalidArgumentError("Attention: block table too short for sequence");
    }
  }
  for (int64_t i = 0; i < meta.num_seqs * static_cast<int64_t>(meta.max_blocks_per_seq); ++i) {
    // Unused entries may hold -1; used ones must point into the cache (checked when read).
    if (tables[i] >= num_blocks) return InvalidArgumentError("Attention: block id out of range");
  }

  const int64_t items = static_cast<int64_t>(meta.num_tokens) * hq;
  Status status;
  std::mutex status_mu;
  pool_->ParallelFor(items, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<float> acc(d);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / hq;
      const int h = static_cast<int>(item % hq);
      const int g = h / group;
      const int32_t s = seq_of_token[t];
      const int32_t pos = positions[t];
      const int32_t first = a.sliding_window > 0 ? std::max(0, pos - a.sliding_window + 1) : 0;
      const float* q = a.q.as<float>() + (t * hq + h) * d;
      const int32_t* table = tables + static_cast<int64_t>(s) * meta.max_blocks_per_seq;
      scores.resize(pos - first + 1);
      float max_score = -INFINITY;
      bool bad_block = false;
      for (int32_t j = first; j <= pos; ++j) {
        const int32_t block = table[j / bs];
        if (block < 0) {
          bad_block = true;
          break;
        }
        const float* k =
            a.k_cache.as<float>() + ((static_cast<int64_t>(block) * bs + j % bs) * hkv + g) * d;
        float dot = 0.0f;
        for (int i = 0; i < d; ++i) dot += q[i] * k[i];
        scores[j - first] = dot * a.scale;
        max_score = std::max(max_score, scores[j - first]);
      }
      if (bad_block) {
        std::lock_guard<std::mutex> lock(status_mu);
        status = InvalidArgumentError("Attention: unassigned block in a block table");
        continue;
      }
      double denom = 0.0;
      for (float& sc : scores) {
        sc = std::exp(sc - max_score);
        denom += sc;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int32_t j = first; j <= pos; ++j) {
        const int32_t block = table[j / bs];
        const float* v =
            a.v_cache.as<float>() + ((static_cast<int64_t>(block) * bs + j % bs) * hkv + g) * d;
        const float p = scores[j - first];
        for (int i = 0; i < d; ++i) acc[i] += p * v[i];
      }
      float* out = a.out.as<float>() + (t * hq + h) * d;
      const float inv = static_cast<float>(1.0 / denom);
      for (int i = 0; i < d; ++i) out[i] = acc[i] * inv;
    }
  });
  return status;
}

}  // namespace tokenfab
