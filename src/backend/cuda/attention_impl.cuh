// Device helpers shared by the attention kernels.
#pragma once

#include <cstdint>

namespace tokenfab::cuda {

// The sequence owning flattened token row `token`: the last s with query_start[s] <= token.
__device__ __forceinline__ int SequenceOfToken(const int32_t* query_start, int num_seqs,
                                               int token) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (query_start[mid] <= token) lo = mid; else hi = mid - 1;
  }
  return lo;
}

}  // namespace tokenfab::cuda
