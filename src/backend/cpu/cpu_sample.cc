// The CPU Sample op: backend/sample_row.h over every row, rows in parallel.
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/op_checks.h"
#include "backend/sample_row.h"

namespace tokenfab {

Status CpuOps::Sample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                      const Tensor& logprobs) {
  TF_RETURN_IF_ERROR(CheckSample(logits, params, tokens, logprobs));
  const int64_t vocab = logits.dim(1);
  pool_->ParallelFor(logits.dim(0), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      DeviceSamplingParams p;
      std::memcpy(&p, static_cast<const char*>(params.data) + r * sizeof(p), sizeof(p));
      const std::span<const float> row(logits.as<float>() + r * vocab, vocab);
      const SampledRow s = SampleRow(row, row, p);
      tokens.as<int32_t>()[r] = s.token;
      logprobs.as<float>()[r] = s.logprob;
    }
  });
  return Status::Ok();
}

}  // namespace tokenfab
