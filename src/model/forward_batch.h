// ForwardBatch: one forward pass's work, described on the host.
//
// The tokens of all sequences are flattened sequence after sequence (no padding); each sequence
// contributes its next chunk of uncached tokens — a whole prompt, a prefill chunk, or one
// decode token. The engine builds it (engine/batch_builder.h); the model uploads it.
#pragma once

#include <cstdint>
#include <vector>

namespace tokenfab {

struct ForwardBatch {
  std::vector<int32_t> token_ids;     // [T]
  std::vector<int32_t> positions;     // [T]: position of each token in its sequence
  std::vector<int32_t> slot_mapping;  // [T]: block * block_size + offset of its K/V
  std::vector<int32_t> query_start;   // [S + 1]: row offsets; query_start[0] = 0
  std::vector<int32_t> seq_lens;      // [S]: cached tokens after this pass, new ones included
  std::vector<int32_t> block_tables;  // [S * max_blocks_per_seq], unused entries -1
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> logit_rows;    // rows whose next-token logits the caller wants

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(seq_lens.size()); }
};

}  // namespace tokenfab
