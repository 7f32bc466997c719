// AttentionMetadata: how a flattened ragged batch maps onto sequences and the paged KV cache.
//
// A batch is all new tokens of all sequences in one array, sequence after sequence, with no
// padding. Sequence s owns rows [query_start[s], query_start[s+1]) of every activation; those
// rows are its newest tokens, so its token at row query_start[s] + i sits at position
// seq_lens[s] - q_len + i. The tensors live in the backend's memory (the kernels read them);
// the host-side counts let a backend plan without reading device memory.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/tensor.h"

namespace tokenfab {

struct AttentionMetadata {
  int32_t num_seqs = 0;
  int32_t num_tokens = 0;
  int32_t max_query_len = 0;   // the longest q_len in the batch
  int32_t max_seq_len = 0;     // the longest seq_lens[s]
  int32_t block_size = 16;     // tokens per KV block
  int32_t max_blocks_per_seq = 0;
  // How many sequences the batch starts with that have exactly one new token (decodes; the
  // engine orders a step's sequences so): a backend may run their attention separately.
  int32_t num_leading_decodes = 0;

  Tensor positions;     // i32 [num_tokens]: position of each token in its sequence
  Tensor slot_mapping;  // i32 [num_tokens]: block * block_size + offset where its K/V go
  Tensor query_start;   // i32 [num_seqs + 1]: row offsets of each sequence's new tokens
  Tensor seq_lens;      // i32 [num_seqs]: tokens in the cache after this step, new ones included
  Tensor block_tables;  // i32 [num_seqs, max_blocks_per_seq]: KV block ids, in order
};

// The num_leading_decodes of a batch with these row offsets (query_start, num_seqs + 1 entries).
inline int32_t CountLeadingDecodes(const std::vector<int32_t>& query_start) {
  int32_t n = 0;
  while (n + 1 < static_cast<int32_t>(query_start.size()) && query_start[n + 1] == n + 1) ++n;
  return n;
}

}  // namespace tokenfab
