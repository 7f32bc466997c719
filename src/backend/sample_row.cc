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
    // The tokens top-k keeps, in id order, with their unnormalised probabilities, computed
    // once: top-p and min-p only raise the threshold, and every sum below reads these.
    std::vector<int32_t> ids;
    std::vector<double> e;
    const size_t expected = threshold == -INFINITY ? vocab : static_cast<size_t>(p.top_k) + 16;
    ids.reserve(expected);
    e.reserve(expected);
    for (int32_t i = 0; i < vocab; ++i) {
      if (z[i] < threshold) continue;
      ids.push_back(i);
      e.push_back(std::exp(static_cast<double>(z[i]) - z_max));
    }
    const size_t n = ids.size();
    if (p.top_p < 1.0f) {  // the smallest value of the most likely set reaching top_p
      double mass = 0.0;
      for (double x : e) mass += x;
      // Most of the mass is in a small head of the candidates: order only as many as needed
      // (nth_element, then sort that head), growing the head until it holds top_p. The order
      // and the running sum are those of sorting every candidate (a full sort of 128k took
      // 16-23 ms a row on the workstation).
      std::vector<int32_t> order(n);  // positions in ids
      for (size_t j = 0; j < n; ++j) order[j] = static_cast<int32_t>(j);
      const auto before = [&](int32_t a, int32_t b) {
        return z[ids[a]] != z[ids[b]] ? z[ids[a]] > z[ids[b]] : a < b;
      };
      double cumulative = 0.0;
      bool reached = false;
      for (size_t done = 0, head = std::min<size_t>(n, 256); !reached && done < n;
           done = head, head = std::min(n, head * 4)) {
        if (head < n) {
          std::nth_element(order.begin() + done, order.begin() + head, order.end(), before);
        }
        std::sort(order.begin() + done, order.begin() + head, before);
        for (size_t j = done; j < head; ++j) {
          cumulative += e[order[j]];
          if (cumulative >= p.top_p * mass) {
            threshold = std::max(threshold, z[ids[order[j]]]);
            reached = true;
            break;
          }
        }
      }
    }
    if (p.min_p > 0.0f) threshold = std::max(threshold, z_max + std::log(p.min_p));
    double total = 0.0;
    for (size_t j = 0; j < n; ++j) {
      if (z[ids[j]] >= threshold) total += e[j];
    }
    double target = UniformDouble(p.seed, /*stream=*/0, p.step) * total;
    out.token = -1;
    for (size_t j = 0; j < n; ++j) {
      if (z[ids[j]] < threshold) continue;
      out.token = ids[j];  // the last candidate if rounding leaves target >= 0 at the end
      target -= e[j];
      if (target < 0.0) break;
    }
  }
  out.logprob = static_cast<float>(raw_logits[out.token] - LogSumExp(raw_logits));
  return out;
}

}  // namespace tokenfab
