#include "engine/warm_up.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "base/check.h"
#include "engine/batch_builder.h"
#include "engine/sampler.h"

namespace tokenfab {

std::vector<WarmUpPass> PlanWarmUp(std::span<const int64_t> token_counts,
                                   std::span<const int64_t> row_counts,
                                   std::span<const int32_t> graph_sizes, int32_t max_tokens,
                                   int32_t max_seqs) {
  std::vector<int32_t> tokens, rows;
  for (int64_t t : token_counts) {
    if (t >= 1 && t <= max_tokens) tokens.push_back(static_cast<int32_t>(t));
  }
  for (int64_t r : row_counts) {
    if (r >= 1 && r <= std::min(max_seqs, max_tokens)) rows.push_back(static_cast<int32_t>(r));
  }
  std::vector<WarmUpPass> passes;
  std::set<int32_t> rows_used;
  // Mixed-step shapes: the i-th token count beside the (i-1)-th row count, or the largest row
  // count below it, so that both lists are walked once. One token alone is a decode (below).
  for (size_t i = 1; i < tokens.size() && !rows.empty(); ++i) {
    const int32_t t = tokens[i];
    int32_t r = rows[std::min(i - 1, rows.size() - 1)];
    if (r >= t) {
      r = 0;
      for (int32_t c : rows) {
        if (c < t) r = c;
      }
      if (r == 0) continue;
    }
    passes.push_back({t, r});
    rows_used.insert(r);
  }
  for (int32_t r : rows) {  // row counts the walk above did not reach
    if (!rows_used.contains(r) && !tokens.empty() && r < tokens.back()) {
      passes.push_back({tokens.back(), r});
    }
  }
  for (int32_t g : graph_sizes) {
    if (g <= max_seqs && g <= max_tokens) passes.push_back({g, g});
  }
  return passes;
}

Result<WarmUpReport> RunWarmUpPasses(Engine& engine, std::span<const WarmUpPass> passes) {
  CHECK(!engine.HasWork()) << "warm-up while requests are in flight";
  const auto start = std::chrono::steady_clock::now();
  const int32_t bs = engine.config().block_size;
  const int64_t vocab = engine.model_config().vocab_size;
  WarmUpReport report;
  for (const WarmUpPass& pass : passes) {
    if (pass.rows < 1 || pass.tokens < pass.rows) {
      return InvalidArgumentError("a warm-up pass needs 1 <= rows <= tokens");
    }
    // rows - 1 one-token sequences and one of the remaining tokens, each from position 0.
    std::vector<int32_t> lengths(pass.rows, 1);
    lengths.back() = pass.tokens - pass.rows + 1;
    std::vector<std::vector<int32_t>> tokens(pass.rows);
    std::vector<std::vector<BlockId>> blocks(pass.rows);
    bool fits = true;
    for (int32_t s = 0; s < pass.rows && fits; ++s) {
      tokens[s].resize(lengths[s]);
      for (int32_t i = 0; i < lengths[s]; ++i) {
        tokens[s][i] = static_cast<int32_t>((s * 131 + i * 7 + 1) % vocab);
      }
      fits = EnsureBlocks(engine.block_pool(), bs, lengths[s], &blocks[s]).ok();
    }
    Status forward = Status::Ok();
    if (fits) {
      std::vector<SequenceChunk> chunks;
      for (int32_t s = 0; s < pass.rows; ++s) {
        chunks.push_back({tokens[s], 0, blocks[s], LogitRows::kLast});
      }
      // Greedy rows sampled on the device, as a serving step's.
      SamplingParams greedy;
      greedy.temperature = 0;
      const std::vector<DeviceSamplingParams> sampling(
          pass.rows, SamplingRule(greedy, /*seed=*/0, /*step=*/0));
      std::vector<int32_t> next;
      ForwardOutputs out;
      out.sampling = sampling;
      out.tokens = &next;
      forward =
          engine.model().Forward(BuildForwardBatch(chunks, bs), engine.kv_cache().tensors(), out);
    }
    for (auto& b : blocks) ReleaseBlocks(engine.block_pool(), &b);
    TF_RETURN_IF_ERROR(forward.WithContext("warm-up pass of " + std::to_string(pass.tokens) +
                                           " tokens, " + std::to_string(pass.rows) + " rows"));
    if (fits) {
      ++report.passes;
    } else {
      ++report.skipped;
    }
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

Result<WarmUpReport> WarmUp(Engine& engine) {
  const EngineConfig& c = engine.config();
  Backend& backend = engine.model().backend();
  const std::vector<int64_t> token_counts = backend.WarmUpRowCounts(c.max_batch_tokens);
  const std::vector<int64_t> row_counts = backend.WarmUpRowCounts(c.max_seqs);
  std::span<const int32_t> graph_sizes;
  if (engine.model().graphs_enabled()) graph_sizes = CausalLm::GraphBatchSizes();
  const std::vector<WarmUpPass> passes =
      PlanWarmUp(token_counts, row_counts, graph_sizes, c.max_batch_tokens, c.max_seqs);
  return RunWarmUpPasses(engine, passes);
}

}  // namespace tokenfab
