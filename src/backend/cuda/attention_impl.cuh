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

// The keys [begin, end) that split `split` of `splits` reads for a query at position `pos`:
// the query's window (all earlier keys, or the last `sliding_window` of them) cut into equal
// chunks; trailing splits of short windows get an empty range.
struct KeyRange {
  int begin;
  int end;
};
__device__ __forceinline__ KeyRange SplitKeyRange(int pos, int sliding_window, int split,
                                                  int splits) {
  const int kv_begin = sliding_window > 0 ? max(0, pos - sliding_window + 1) : 0;
  const int chunk = (pos + 1 - kv_begin + splits - 1) / splits;
  const int begin = kv_begin + split * chunk;
  return {begin, min(pos + 1, begin + chunk)};
}

}  // namespace tokenfab::cuda
