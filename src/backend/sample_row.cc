#include "backend/sample_row.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "base/random.h"

namespace tokenfab {

double LogSumExp(std::span<const float> logits) {
  if (logits.empty()) return -INFINITY;
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  // expf of (x - max) <= 0 is accurate to an ulp; the sum is kept in double.
  double sum = 0.0;
  for (float x : logits) sum += std::exp(x - max_logit);
  return static_cast<double>(max_logit) + std::log(sum);
}

SampledRow SampleRow(std::span<const float> logits, std::span<const float> raw_logits,
                     const DeviceSamplingParams& p) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  SampledRow out;
  if (p.temperature == 0.0f || p.top_k == 1) {
    out.token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                     logits.begin());  // first maximum: lowest id on ties
  } else {
    const float inv_t = 1.0f / p.temperature;
    std::vector<float> z(vocab);
    for (int32_t i = 0; i < vocab; ++i) z[i] = logits[i] * inv_t;
    const float z_max = *std::max_element(z.begin(), z.end());
    float threshold = -INFINITY;
    if (p.top_k > 0 && p.top_k < vocab) {  // the k-th largest value
      std::vector<float> sorted = z;
      std::nth_element(sorted.begin(), sorted.begin() + (p.top_k - 1), sorted.end(),
                       std::greater<float>());
      threshold = sorted[p.top_k - 1];
    }
    // The unnormalised probability of each token top-k keeps, once: every sum below reads
    // these (top-p and min-p only raise the threshold).
    std::vector<double> e(vocab, 0.0);
    for (int32_t i = 0; i < vocab; ++i) {
      if (z[i] >= threshold) e[i] = std::exp(static_cast<double>(z[i]) - z_max);
    }
    if (p.top_p < 1.0f) {  // the smallest value of the most likely set reaching top_p
      std::vector<int32_t> kept;
      double mass = 0.0;
      for (int32_t i = 0; i < vocab; ++i) {
        if (z[i] >= threshold) {
          kept.push_back(i);
          mass += e[i];
        }
      }
      // Most of the mass is in a small head of the candidates: order only as many as needed
      // (nth_element, then sort that head), growing the head until it holds top_p. The order
      // and the running sum are those of sorting every candidate (a full sort of 128k took
      // 23 ms a row on the workstation).
      const auto before = [&](int32_t a, int32_t b) { return z[a] != z[b] ? z[a] > z[b] : a < b; };
      double cumulative = 0.0;
      bool reached = false;
      for (size_t done = 0, head = std::min<size_t>(kept.size(), 256); !reached && done < kept.size();
           done = head, head = std::min(kept.size(), head * 4)) {
        if (head < kept.size()) {
          std::nth_element(kept.begin() + done, kept.begin() + head, kept.end(), before);
        }
        std::sort(kept.begin() + done, kept.begin() + head, before);
        for (size_t j = done; j < head; ++j) {
          cumulative += e[kept[j]];
          if (cumulative >= p.top_p * mass) {
            threshold = std::max(threshold, z[kept[j]]);
            reached = true;
            break;
          }
        }
      }
    }
    if (p.min_p > 0.0f) threshold = std::max(threshold, z_max + std::log(p.min_p));
    double total = 0.0;
    for (int32_t i = 0; i < vocab; ++i) {
      if (z[i] >= threshold) total += e[i];
    }
    double target = UniformDouble(p.seed, /*stream=*/0, p.step) * total;
    out.token = -1;
    for (int32_t i = 0; i < vocab; ++i) {
      if (z[i] < threshold) continue;
      out.token = i;  // the last candidate if rounding leaves target >= 0 at the end
      target -= e[i];
      if (target < 0.0) break;
    }
  }
  out.logprob = static_cast<float>(raw_logits[out.token] - LogSumExp(raw_logits));
  return out;
}

}  // namespace tokenfab
