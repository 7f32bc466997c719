// Builds a ForwardBatch from sequences' next chunks, allocating the KV blocks the chunks need.
//
// A sequence's KV lives in its list of blocks: token i of the sequence sits in block
// blocks[i / block_size] at offset i % block_size. Thread-safety: none; the engine's thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kv/block_pool.h"
#include "model/forward_batch.h"

namespace tokenfab {

// Grows `blocks` until it covers `num_tokens` tokens. On ResourceExhausted nothing is
// allocated.
Status EnsureBlocks(BlockPool& pool, int32_t block_size, int32_t num_tokens,
                    std::vector<BlockId>* blocks);

// Releases every block of a sequence.
void ReleaseBlocks(BlockPool& pool, std::vector<BlockId>* blocks);

enum class LogitRows { kNone, kLast, kAll };

struct SequenceChunk {
  std::span<const int32_t> tokens;     // the new tokens of this pass
  int32_t num_cached = 0;              // tokens of the sequence already in the cache
  std::span<const BlockId> blocks;     // must cover num_cached + tokens.size()
  LogitRows logits = LogitRows::kLast;
};

// Lays the chunks out sequence after sequence. CHECKs that each chunk's blocks suffice.
ForwardBatch BuildForwardBatch(std::span<const SequenceChunk> chunks, int32_t block_size);

}  // namespace tokenfab
