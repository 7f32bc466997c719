#include "backend/cuda/candidates.h"

#include <cstdlib>
#include <string>

#include "base/logging.h"

namespace tokenfab::cuda {
namespace {

constexpr Candidate kAll[] = {Candidate::kGemvPrefetch, Candidate::kGatedGemv,
                              Candidate::kMoeSmallBatch, Candidate::kPipelinedDecode,
                              Candidate::kGemmAutotune};

// Bit i: kAll[i] is on.
unsigned ParseCandidates() {
  const char* env = std::getenv("TOKENFAB_CUDA_CANDIDATES");
  if (env == nullptr || *env == '\0') return 0;
  const std::string_view list(env);
  unsigned bits = 0;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view name = list.substr(start, comma - start);
    bool known = name.empty();
    for (size_t i = 0; i < std::size(kAll); ++i) {
      if (name == "all" || name == CandidateName(kAll[i])) {
        bits |= 1u << i;
        known = true;
      }
    }
    if (!known) LOG(WARNING) << "TOKENFAB_CUDA_CANDIDATES: unknown candidate '" << name << "'";
    start = comma + 1;
  }
  for (size_t i = 0; i < std::size(kAll); ++i) {
    if (bits >> i & 1u) LOG(INFO) << "cuda kernel candidate on: " << CandidateName(kAll[i]);
  }
  return bits;
}

}  // namespace

std::string_view CandidateName(Candidate candidate) {
  switch (candidate) {
    case Candidate::kGemvPrefetch:
      return "gemv_prefetch";
    case Candidate::kGatedGemv:
      return "gated_gemv";
    case Candidate::kMoeSmallBatch:
      return "moe_small_batch";
    case Candidate::kPipelinedDecode:
      return "pipelined_decode";
    case Candidate::kGemmAutotune:
      return "gemm_autotune";
  }
  return "unknown";
}

bool CandidateEnabled(Candidate candidate) {
  static const unsigned bits = ParseCandidates();
  for (size_t i = 0; i < std::size(kAll); ++i) {
    if (kAll[i] == candidate) return bits >> i & 1u;
  }
  return false;
}

}  // namespace tokenfab::cuda
