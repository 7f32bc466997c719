// CpuOps: the CPU implementation of every op in backend/ops.h. The heavy ones live in their
// own files (cpu_matmul.cc, cpu_attention.cc, cpu_moe.cc); this header ties them together.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/ops.h"
#include "base/thread_pool.h"

namespace tokenfab {

class CpuOps final : public Ops {
 public:
  explicit CpuOps(ThreadPool* pool) : pool_(pool) {}

  Status Embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override;
  Status RmsNorm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) override;
  Status MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) override;
  Status NormMatMul(const Tensor& x, const Tensor& norm_weight, float eps, const Tensor& w,
                    const Tensor& bias, bool gated, const Tensor& out) override;
  Status MatMulAdd(const Tensor& x, const Tensor& w, const Tensor& bias,
                   const Tensor& residual) override;
  Status ProjectionChain(const ProjectionStage* stages, int count) override;
  Status PrepareQkv(const QkvArgs& args, const AttentionMetadata& meta) override;
  Status Attention(const AttentionArgs& args, const AttentionMetadata& meta) override;
  Status MoeRoute(const Tensor& logits, bool normalize, const Tensor& ids,
                  const Tensor& weights) override;
  Status MoeExperts(const MoeArgs& args) override;
  Status MoeBlock(const MoeBlockArgs& args) override;
  Status GatherRows(const Tensor& in, const Tensor& indices, const Tensor& out) override;
  Status Sample(const Tensor& logits, const Tensor& params, const Tensor& tokens,
                const Tensor& logprobs) override;

 private:
  ThreadPool* pool_;
  // Intermediates of the fused ops (normalised or gated inputs, products to add), reused.
  std::vector<float> scratch_in_, scratch_out_;
  // MoeExperts' buffers, reused so that steps stop allocating once a batch size has been seen:
  // the (token * k + slot) entries grouped by expert (expert_begin[e] .. expert_begin[e + 1]
  // index expert_rows), every entry's expert output, and one expert's inputs and products.
  struct MoeScratch {
    std::vector<int64_t> expert_begin, expert_rows, fill;
    std::vector<float> contrib, x, gate_up, act, down;
  } moe_;
};

}  // namespace tokenfab
