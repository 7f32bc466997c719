// CPU mixture-of-experts: softmax/top-k routing and the routed expert MLPs. Tokens are grouped
// by expert so each expert runs one GEMM over all of its tokens (not one per token); the k
// contributions of a token are summed in k order, so results do not depend on batch makeup.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "backend/cpu/cpu_matmul.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/op_checks.h"
#include "backend/op_composition.h"

namespace tokenfab {

Status CpuOps::MoeRoute(const Tensor& logits, bool normalize, const Tensor& ids,
                        const Tensor& weights) {
  TF_RETURN_IF_ERROR(CheckMoeRoute(logits, ids, weights));
  if (logits.dtype != DType::kF32) return InvalidArgumentError("MoeRoute: logits must be f32");
  const int64_t t_count = logits.dim(0), experts = logits.dim(1), k = ids.dim(1);
  pool_->ParallelFor(t_count, [&](int64_t begin, int64_t end) {
    thread_local std::vector<double> probs;  // per worker, kept across steps
    thread_local std::vector<int32_t> order;
    probs.resize(experts);
    order.resize(experts);
    for (int64_t t = begin; t < end; ++t) {
      const float* row = logits.as<float>() + t * experts;
      const float max_logit = *std::max_element(row, row + experts);
      double sum = 0.0;
      for (int64_t e = 0; e < experts; ++e) {
        probs[e] = std::exp(static_cast<double>(row[e]) - max_logit);
        sum += probs[e];
      }
      for (double& p : probs) p /= sum;
      std::iota(order.begin(), order.end(), 0);
      // Highest probability first; ties go to the lower expert id.
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t x, int32_t y) {
        return probs[x] != probs[y] ? probs[x] > probs[y] : x < y;
      });
      double chosen = 0.0;
      for (int64_t j = 0; j < k; ++j) chosen += static_cast<float>(probs[order[j]]);
      for (int64_t j = 0; j < k; ++j) {
        const float p = static_cast<float>(probs[order[j]]);
        ids.as<int32_t>()[t * k + j] = order[j];
        weights.as<float>()[t * k + j] = normalize ? static_cast<float>(p / chosen) : p;
      }
    }
  });
  return Status::Ok();
}

Status CpuOps::MoeExperts(const MoeArgs& a) {
  TF_RETURN_IF_ERROR(CheckMoeExperts(a, DType::kF32));
  const int64_t t_count = a.x.dim(0), hidden = a.x.dim(1), k = a.expert_ids.dim(1);
  const int64_t experts = a.gate_up.dim(0), inter = a.gate_up.dim(1) / 2;
  const int32_t* ids = a.expert_ids.as<int32_t>();
  for (int64_t i = 0; i < t_count * k; ++i) {
    if (ids[i] < 0 || ids[i] >= experts) {
      return InvalidArgumentError("MoeExperts: expert id " + std::to_string(ids[i]) +
                                  " out of range");
    }
  }
  // Counting sort of the (token * k + slot) entries by expert, each expert's in token order.
  MoeScratch& m = moe_;
  const int64_t entries = t_count * k;
  m.expert_begin.assign(experts + 1, 0);
  for (int64_t i = 0; i < entries; ++i) ++m.expert_begin[ids[i] + 1];
  for (int64_t e = 0; e < experts; ++e) m.expert_begin[e + 1] += m.expert_begin[e];
  m.fill.assign(m.expert_begin.begin(), m.expert_begin.end() - 1);
  m.expert_rows.resize(entries);
  for (int64_t i = 0; i < entries; ++i) m.expert_rows[m.fill[ids[i]]++] = i;

  m.contrib.resize(static_cast<size_t>(entries * hidden));
  const size_t w_size = DTypeSize(a.gate_up.dtype);
  for (int64_t e = 0; e < experts; ++e) {
    const int64_t* rows = m.expert_rows.data() + m.expert_begin[e];
    const int64_t n = m.expert_begin[e + 1] - m.expert_begin[e];
    if (n == 0) continue;
    m.x.resize(n * hidden);
    for (int64_t r = 0; r < n; ++r) {
      const float* src = a.x.as<float>() + (rows[r] / k) * hidden;
      std::copy(src, src + hidden, m.x.begin() + r * hidden);
    }
    m.gate_up.resize(n * 2 * inter);
    m.act.resize(n * inter);
    m.down.resize(n * hidden);
    const char* gu_w = static_cast<const char*>(a.gate_up.data) + e * 2 * inter * hidden * w_size;
    const char* dn_w = static_cast<const char*>(a.down.data) + e * hidden * inter * w_size;
    CpuGemm(m.x.data(), n, hidden, gu_w, a.gate_up.dtype, 2 * inter, nullptr, m.gate_up.data(),
            *pool_);
    for (int64_t r = 0; r < n; ++r) {
      const float* g = m.gate_up.data() + r * 2 * inter;
      for (int64_t i = 0; i < inter; ++i) {
        m.act[r * inter + i] = g[i] / (1.0f + std::exp(-g[i])) * g[inter + i];
      }
    }
    CpuGemm(m.act.data(), n, inter, dn_w, a.down.dtype, hidden, nullptr, m.down.data(), *pool_);
    for (int64_t r = 0; r < n; ++r) {
      std::copy(m.down.begin() + r * hidden, m.down.begin() + (r + 1) * hidden,
                m.contrib.begin() + rows[r] * hidden);
    }
  }
  const float* w = a.expert_weights.as<float>();
  pool_->ParallelFor(t_count, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* out = a.residual.as<float>() + t * hidden;
      for (int64_t j = 0; j < k; ++j) {
        const float* c = m.contrib.data() + (t * k + j) * hidden;
        const float weight = w[t * k + j];
        for (int64_t i = 0; i < hidden; ++i) out[i] += weight * c[i];
      }
    }
  });
  return Status::Ok();
}

Status CpuOps::MoeBlock(const MoeBlockArgs& a) { return ComposeMoeBlock(*this, a); }

}  // namespace tokenfab
