#include "engine/batch_builder.h"

#include <algorithm>

namespace tokenfab {

Status EnsureBlocks(BlockPool& pool, int32_t block_size, int32_t num_tokens,
                    std::vector<BlockId>* blocks) {
  const int32_t needed = (num_tokens + block_size - 1) / block_size;
  const int32_t missing = needed - static_cast<int32_t>(blocks->size());
  if (missing <= 0) return Status::Ok();
  TF_ASSIGN_OR_RETURN(std::vector<BlockId> fresh, pool.AllocateMany(missing));
  blocks->insert(blocks->end(), fresh.begin(), fresh.end());
  return Status::Ok();
}

void ReleaseBlocks(BlockPool& pool, std::vector<BlockId>* blocks) {
  for (BlockId b : *blocks) pool.Release(b);
  blocks->clear();
}

ForwardBatch BuildForwardBatch(std::span<const SequenceChunk> chunks, int32_t block_size) {
  ForwardBatch b;
  b.max_blocks_per_seq = 1;
  for (const SequenceChunk& c : chunks) {
    b.max_blocks_per_seq = std::max(b.max_blocks_per_seq, static_cast<int32_t>(c.blocks.size()));
  }
  b.query_start.push_back(0);
  for (const SequenceChunk& c : chunks) {
    const int32_t n = static_cast<int32_t>(c.tokens.size());
    const int32_t total = c.num_cached + n;
    CHECK_LE(total, static_cast<int32_t>(c.blocks.size()) * block_size) << "too few KV blocks";
    const int32_t first_row = b.num_tokens();
    for (int32_t i = 0; i < n; ++i) {
      const int32_t pos = c.num_cached + i;
      b.token_ids.push_back(c.tokens[i]);
      b.positions.push_back(pos);
      b.slot_mapping.push_back(c.blocks[pos / block_size] * block_size + pos % block_size);
    }
    b.query_start.push_back(b.num_tokens());
    b.seq_lens.push_back(total);
    for (int32_t i = 0; i < b.max_blocks_per_seq; ++i) {
      b.block_tables.push_back(i < static_cast<int32_t>(c.blocks.size()) ? c.blocks[i] : -1);
    }
    if (c.logits == LogitRows::kAll) {
      for (int32_t i = 0; i < n; ++i) b.logit_rows.push_back(first_row + i);
    } else if (c.logits == LogitRows::kLast && n > 0) {
      b.logit_rows.push_back(first_row + n - 1);
    }
  }
  return b;
}

}  // namespace tokenfab
