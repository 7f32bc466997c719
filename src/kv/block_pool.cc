#include "kv/block_pool.h"

#include <string>

namespace tokenfab {

BlockPool::BlockPool(int32_t num_blocks) : ref_counts_(num_blocks, 0) {
  CHECK_GE(num_blocks, 0);
  free_.reserve(num_blocks);
  for (BlockId b = num_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out 0, 1, 2, ...
}

Result<BlockId> BlockPool::Allocate() {
  if (free_.empty()) {
    return ResourceExhaustedError("KV cache is full (" + std::to_string(num_blocks()) +
                                  " blocks in use)");
  }
  const BlockId block = free_.back();
  free_.pop_back();
  ref_counts_[block] = 1;
  return block;
}

Result<std::vector<BlockId>> BlockPool::AllocateMany(int32_t count) {
  if (count > num_free()) {
    return ResourceExhaustedError("KV cache is full: need " + std::to_string(count) +
                                  " blocks, " + std::to_string(num_free()) + " free");
  }
  std::vector<BlockId> blocks;
  blocks.reserve(count);
  for (int32_t i = 0; i < count; ++i) blocks.push_back(Allocate().value());
  return blocks;
}

void BlockPool::AddRef(BlockId block) {
  CHECK(block >= 0 && block < num_blocks());
  CHECK_GT(ref_counts_[block], 0) << "AddRef on free block " << block;
  ++ref_counts_[block];
}

void BlockPool::Release(BlockId block) {
  CHECK(block >= 0 && block < num_blocks());
  CHECK_GT(ref_counts_[block], 0) << "double release of block " << block;
  if (--ref_counts_[block] == 0) free_.push_back(block);
}

int32_t BlockPool::ref_count(BlockId block) const {
  CHECK(block >= 0 && block < num_blocks());
  return ref_counts_[block];
}

}  // namespace tokenfab
