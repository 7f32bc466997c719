// BlockPool: ownership of KV block ids. Blocks are reference-counted so that sequences can
// share a prefix later (prefix caching); a block returns to the free list when its last
// reference goes. Knows nothing of where block memory lives.
// Thread-safety: not thread-safe; owned by the engine's thread.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace tokenfab {

using BlockId = int32_t;

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t num_used() const { return num_blocks() - num_free(); }

  // A free block with one reference; ResourceExhausted when none is left.
  Result<BlockId> Allocate();
  // All of `count` blocks or none.
  Result<std::vector<BlockId>> AllocateMany(int32_t count);

  void AddRef(BlockId block);
  // Drops one reference; the block is free again when none remain.
  void Release(BlockId block);
  int32_t ref_count(BlockId block) const;

 private:
  std::vector<int32_t> ref_counts_;
  std::vector<BlockId> free_;  // a stack: recently freed blocks are reused first
};

}  // namespace tokenfab
