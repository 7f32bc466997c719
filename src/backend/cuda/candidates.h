// Kernel candidates: new CUDA code paths that CI compiles but that stay off until a run on the
// GPU has checked them against the CPU backend (tools/device/check.sh runs the op and golden
// tests with each one on) and timed them against the path they would replace. A measured winner
// becomes the default and leaves this list; a loser is deleted with its numbers in the commit.
//
//   TOKENFAB_CUDA_CANDIDATES=gemv_prefetch,gated_gemv   (or "all")
//
// Thread-safety: the variable is read once, on first use; safe from any thread after that.
#pragma once

#include <string_view>

namespace tokenfab::cuda {

enum class Candidate {
  // Skinny GEMVs ask the copy engine to prefetch the first bytes of their weight rows into L2
  // before waiting on the previous kernel (weights never depend on it), so the memory system
  // is busy while the latency-bound kernels between projections run.
  kGemvPrefetch,
  // The MLP's gate/up GEMV computes silu(gate) * up in its epilogue: one kernel and one
  // round trip of the [M, 2I] product fewer per layer.
  kGatedGemv,
  // MoE layers of one or two tokens: norm, router, top-k in one kernel (the last block to
  // finish picks the experts), expert gate/up with K split across warps, and the down
  // projection with the weighted combine into the residual in the same kernel.
  kMoeSmallBatch,
  // The decode attention kernel issues each round's K/V loads before scoring the previous
  // round (two rounds in flight per lane; about 32 more registers).
  kPipelinedDecode,
  // cuBLASLt algorithms timed (eight heuristic guesses) once per power-of-two bucket of M and
  // shared by every M in it; see cublaslt_gemm.h.
  kGemmAutotune,
};

// Whether the candidate is switched on by TOKENFAB_CUDA_CANDIDATES.
bool CandidateEnabled(Candidate candidate);

// The spelling in TOKENFAB_CUDA_CANDIDATES.
std::string_view CandidateName(Candidate candidate);

}  // namespace tokenfab::cuda
