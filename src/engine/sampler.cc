#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/random.h"

namespace tokenfab {

double LogSumExp(std::span<const float> logits) {
  if (logits.empty()) return -INFINITY;
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  // expf of (x - max) <= 0 is accurate to an ulp; the sum of up to ~10^6 terms is kept in
  // double so the result stays within f32 rounding of the exact value.
  double sum = 0.0;
  for (float x : logits) sum += std::exp(x - max_logit);
  return static_cast<double>(max_logit) + std::log(sum);
}

void LogSoftmax(std::span<const float> logits, std::vector<float>* out) {
  out->resize(logits.size());
  if (logits.empty()) return;
  const double log_z = LogSumExp(logits);
  for (size_t i = 0; i < logits.size(); ++i) {
    (*out)[i] = static_cast<float>(static_cast<double>(logits[i]) - log_z);
  }
}

void Sampler::ApplyPenalties(const SamplingParams& p, std::span<const int32_t> prompt,
                             std::span<const int32_t> output) {
  const int32_t vocab = static_cast<int32_t>(work_.size());
  if (p.repetition_penalty != 1.0) {
    const float penalty = static_cast<float>(p.repetition_penalty);
    std::vector<bool> seen(vocab, false);
    for (std::span<const int32_t> part : {prompt, output}) {
      for (int32_t t : part) {
        if (t < 0 || t >= vocab || seen[t]) continue;
        seen[t] = true;
        work_[t] = work_[t] > 0 ? work_[t] / penalty : work_[t] * penalty;
      }
    }
  }
  if (p.presence_penalty != 0.0 || p.frequency_penalty != 0.0) {
    counts_.assign(vocab, 0);
    for (int32_t t : output) {
      if (t >= 0 && t < vocab) ++counts_[t];
    }
    for (int32_t t = 0; t < vocab; ++t) {
      if (counts_[t] == 0) continue;
      work_[t] -= static_cast<float>(p.frequency_penalty * counts_[t] + p.presence_penalty);
    }
  }
}

int32_t Sampler::Draw(const SamplingParams& p, double u) {
  const int32_t vocab = static_cast<int32_t>(work_.size());
  const double inv_t = 1.0 / p.temperature;
  candidates_.resize(vocab);
  std::iota(candidates_.begin(), candidates_.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) {
    return work_[a] != work_[b] ? work_[a] > work_[b] : a < b;
  };
  size_t keep = candidates_.size();
  if (p.top_k > 0 && p.top_k < vocab) {
    keep = static_cast<size_t>(p.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(),
                      by_logit);
    candidates_.resize(keep);
  } else if (p.top_p < 1.0) {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  // Softmax of logits / temperature over the candidates (the max is their first when sorted).
  const float max_logit =
      work_[*std::max_element(candidates_.begin(), candidates_.end(), [&](int32_t a, int32_t b) {
        return work_[a] < work_[b];
      })];
  probs_.resize(candidates_.size());
  double sum = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    probs_[i] = std::exp((static_cast<double>(work_[candidates_[i]]) - max_logit) * inv_t);
    sum += probs_[i];
  }
  for (double& q : probs_) q /= sum;
  if (p.top_p < 1.0) {  // candidates are sorted: keep the smallest prefix reaching top_p
    double cumulative = 0.0;
    size_t n = 0;
    while (n < probs_.size()) {
      cumulative += probs_[n++];
      if (cumulative >= p.top_p) break;
    }
    candidates_.resize(n);
    probs_.resize(n);
  }
  if (p.min_p > 0.0) {
    const double threshold = p.min_p * *std::max_element(probs_.begin(), probs_.end());
    size_t out = 0;
    for (size_t i = 0; i < probs_.size(); ++i) {
      if (probs_[i] >= threshold) {
        candidates_[out] = candidates_[i];
        probs_[out++] = probs_[i];
      }
    }
    candidates_.resize(out);
    probs_.resize(out);
  }
  const double total = std::accumulate(probs_.begin(), probs_.end(), 0.0);
  double target = u * total;
  for (size_t i = 0; i < probs_.size(); ++i) {
    target -= probs_[i];
    if (target < 0.0) return candidates_[i];
  }
  return candidates_.back();  // u * total rounded up to total
}

SampledToken Sampler::Sample(std::span<const float> logits, const SamplingParams& params,
                             std::span<const int32_t> prompt, std::span<const int32_t> output,
                             uint64_t seed, uint64_t step) {
  work_.assign(logits.begin(), logits.end());
  ApplyPenalties(params, prompt, output);
  SampledToken result;
  if (params.greedy()) {
    result.token = static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) -
                                        work_.begin());  // first maximum: lowest id on ties
  } else {
    result.token = Draw(params, UniformDouble(seed, /*stream=*/0, step));
  }
  if (params.num_logprobs >= 0) {
    LogSoftmax(logits, &logprobs_);
    result.logprob = logprobs_[result.token];
    const int32_t k = std::min<int32_t>(params.num_logprobs, static_cast<int32_t>(logits.size()));
    candidates_.resize(logits.size());
    std::iota(candidates_.begin(), candidates_.end(), 0);
    std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(),
                      [&](int32_t a, int32_t b) {
                        return logprobs_[a] != logprobs_[b] ? logprobs_[a] > logprobs_[b] : a < b;
                      });
    for (int32_t i = 0; i < k; ++i) {
      result.top_logprobs.push_back({candidates_[i], logprobs_[candidates_[i]]});
    }
  }
  return result;
}

}  // namespace tokenfab
