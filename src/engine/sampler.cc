#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/random.h"

namespace tokenfab {

DeviceSamplingParams SamplingRule(const SamplingParams& params, uint64_t seed, uint64_t step) {
  DeviceSamplingParams rule;
  rule.temperature = static_cast<float>(params.temperature);
  rule.top_p = static_cast<float>(params.top_p);
  rule.min_p = static_cast<float>(params.min_p);
  rule.top_k = params.top_k;
  rule.seed = seed;
  rule.step = step;
  return rule;
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
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < vocab) work_[token] += bias;
  }
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

SampledToken Sampler::Sample(std::span<const float> logits, const SamplingParams& params,
                             std::span<const int32_t> prompt, std::span<const int32_t> output,
                             uint64_t seed, uint64_t step) {
  work_.assign(logits.begin(), logits.end());
  ApplyPenalties(params, prompt, output);
  const SampledRow row = SampleRow(work_, logits, SamplingRule(params, seed, step));
  SampledToken result;
  result.token = row.token;
  result.logprob = row.logprob;
  if (params.num_logprobs > 0) {
    LogSoftmax(logits, &logprobs_);
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
