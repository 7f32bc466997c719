// BlockPool: ownership of KV block ids. Blocks are reference-counted so that sequences can
// share a prefix (prefix caching); a block returns to the free list when its last reference
// goes. Knows nothing of where block memory lives.
//
// A block marked cached (it holds the KV of a hashed prefix, see PrefixCache) is not wiped
// when its last reference goes: it waits, still reusable, in an LRU list of evictable blocks.
// Allocation takes never-cached free blocks first (most recently freed first) and only then
// evicts the least recently used cached block, telling the evict listener so that the prefix
// cache forgets it. num_free() counts both kinds: an evictable block is as good as free.
// Thread-safety: not thread-safe; owned by the engine's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"

namespace tokenfab {

using BlockId = int32_t;

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_counts_.size()); }
  // Blocks without a reference: never-cached ones plus evictable cached ones.
  int32_t num_free() const { return static_cast<int32_t>(free_.size()) + num_evictable_; }
  int32_t num_used() const { return num_blocks() - num_free(); }
  // Unreferenced blocks that still hold a cached prefix.
  int32_t num_evictable() const { return num_evictable_; }

  // A free block with one reference; ResourceExhausted when none is left.
  Result<BlockId> Allocate();
  // All of `count` blocks or none.
  Result<std::vector<BlockId>> AllocateMany(int32_t count);

  void AddRef(BlockId block);
  // Drops one reference; the block is free (or evictable, if cached) when none remain.
  void Release(BlockId block);
  int32_t ref_count(BlockId block) const;

  // Prefix caching. MarkCached: a referenced block now holds a cached prefix. AcquireCached: a
  // new reference to a cached block, referenced or evictable. Uncache: the block is no longer
  // cached (an evictable one becomes plainly free).
  void MarkCached(BlockId block);
  void AcquireCached(BlockId block);
  void Uncache(BlockId block);
  bool is_cached(BlockId block) const;
  // Called with a cached block just before Allocate reuses it for something else.
  void set_evict_listener(std::function<void(BlockId)> listener) {
    evict_listener_ = std::move(listener);
  }

 private:
  void CheckId(BlockId block) const;
  void LruPushBack(BlockId block);
  void LruRemove(BlockId block);

  std::vector<int32_t> ref_counts_;
  std::vector<BlockId> free_;  // a stack: recently freed blocks are reused first
  std::vector<uint8_t> cached_;
  // Evictable cached blocks, least recently used first: an intrusive doubly linked list.
  std::vector<BlockId> lru_prev_, lru_next_;
  BlockId lru_head_ = -1, lru_tail_ = -1;
  int32_t num_evictable_ = 0;
  std::function<void(BlockId)> evict_listener_;
};

}  // namespace tokenfab
