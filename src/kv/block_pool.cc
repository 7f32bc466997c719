#include "kv/block_pool.h"

#include <string>

namespace tokenfab {

BlockPool::BlockPool(int32_t num_blocks)
    : ref_counts_(num_blocks, 0),
      cached_(num_blocks, 0),
      lru_prev_(num_blocks, -1),
      lru_next_(num_blocks, -1) {
  CHECK_GE(num_blocks, 0);
  free_.reserve(num_blocks);
  for (BlockId b = num_blocks - 1; b >= 0; --b) free_.push_back(b);  // hand out 0, 1, 2, ...
}

void BlockPool::CheckId(BlockId block) const { CHECK(block >= 0 && block < num_blocks()); }

void BlockPool::LruPushBack(BlockId block) {
  lru_prev_[block] = lru_tail_;
  lru_next_[block] = -1;
  if (lru_tail_ >= 0) lru_next_[lru_tail_] = block;
  else lru_head_ = block;
  lru_tail_ = block;
  ++num_evictable_;
}

void BlockPool::LruRemove(BlockId block) {
  const BlockId prev = lru_prev_[block], next = lru_next_[block];
  if (prev >= 0) lru_next_[prev] = next;
  else lru_head_ = next;
  if (next >= 0) lru_prev_[next] = prev;
  else lru_tail_ = prev;
  lru_prev_[block] = lru_next_[block] = -1;
  --num_evictable_;
}

Result<BlockId> BlockPool::Allocate() {
  BlockId block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else if (lru_head_ >= 0) {
    block = lru_head_;
    LruRemove(block);
    cached_[block] = 0;
    if (evict_listener_) evict_listener_(block);
  } else {
    return ResourceExhaustedError("KV cache is full (" + std::to_string(num_blocks()) +
                                  " blocks in use)");
  }
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
  CheckId(block);
  CHECK_GT(ref_counts_[block], 0) << "AddRef on free block " << block;
  ++ref_counts_[block];
}

void BlockPool::Release(BlockId block) {
  CheckId(block);
  CHECK_GT(ref_counts_[block], 0) << "double release of block " << block;
  if (--ref_counts_[block] > 0) return;
  if (cached_[block]) LruPushBack(block);
  else free_.push_back(block);
}

int32_t BlockPool::ref_count(BlockId block) const {
  CheckId(block);
  return ref_counts_[block];
}

void BlockPool::MarkCached(BlockId block) {
  CheckId(block);
  CHECK_GT(ref_counts_[block], 0) << "MarkCached on free block " << block;
  cached_[block] = 1;
}

void BlockPool::AcquireCached(BlockId block) {
  CheckId(block);
  CHECK(cached_[block]) << "AcquireCached on uncached block " << block;
  if (ref_counts_[block]++ == 0) LruRemove(block);
}

void BlockPool::Uncache(BlockId block) {
  CheckId(block);
  if (!cached_[block]) return;
  cached_[block] = 0;
  if (ref_counts_[block] == 0) {
    LruRemove(block);
    free_.push_back(block);
  }
}

bool BlockPool::is_cached(BlockId block) const {
  CheckId(block);
  return cached_[block] != 0;
}

}  // namespace tokenfab
