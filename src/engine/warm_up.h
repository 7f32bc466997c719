// WarmUp: before a server takes requests, runs the forward passes whose first use costs more
// than later ones, so that no request pays for it. On the GPU a new bucket of GEMM rows makes
// cuBLASLt time its candidate algorithms (tens of milliseconds for the step that meets it) and
// a new decode batch size captures a graph; a serving run meets new ones whenever its batch
// shape changes (about 6% of a c=64 benchmark's time on the H100 before this existed,
// bench/results/2026-12-07_h100_serving-step-log_a197911).
//
// The passes: every row count the backend tunes per bucket (Backend::WarmUpRowCounts) up to the
// step's token budget as the tokens of a mixed-step shape (rows < tokens, as beside a prompt
// chunk), every such count up to the sequence limit as its logit rows, and one decode step at
// each graph batch size up to the sequence limit (contexts of one token: the smallest graphs).
// They write garbage KV into blocks borrowed from the pool and given back; nothing is cached.
// Thread-safety: the engine's owner thread, before any request.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "engine/engine.h"

namespace tokenfab {

struct WarmUpPass {
  int32_t tokens = 0;  // in the forward pass
  int32_t rows = 0;    // sequences, each with a logit row; tokens == rows is a decode step
  bool operator==(const WarmUpPass&) const = default;
};

// The passes for ascending `token_counts` (up to the token budget) and `row_counts` (up to the
// sequence limit), then decodes at each of `graph_sizes` within both limits. Pure: tested from
// tables.
std::vector<WarmUpPass> PlanWarmUp(std::span<const int64_t> token_counts,
                                   std::span<const int64_t> row_counts,
                                   std::span<const int32_t> graph_sizes, int32_t max_tokens,
                                   int32_t max_seqs);

struct WarmUpReport {
  int32_t passes = 0;
  int32_t skipped = 0;  // passes whose KV did not fit the pool
  double seconds = 0;
};

// PlanWarmUp for this engine's backend and limits, run. Nothing to do on a backend without
// first-use costs (the CPU).
Result<WarmUpReport> WarmUp(Engine& engine);

// Runs `passes` (the engine idle, no request in flight).
Result<WarmUpReport> RunWarmUpPasses(Engine& engine, std::span<const WarmUpPass> passes);

}  // namespace tokenfab
