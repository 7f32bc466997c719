// PrefixCache: block hash -> KV block, for reusing the KV of a prompt prefix across requests
// (the GPU tier, G1). A sequence's full blocks are registered under their chained hashes
// (block_hash.h) once computed; a later sequence whose first blocks hash the same takes
// references to those blocks instead of recomputing them (longest-prefix match). Unreferenced
// cached blocks stay in BlockPool's LRU list until the pool needs them (eviction then tells
// this class through the pool's evict listener). Pinned prefixes hold a reference of the
// cache's own, so they are never evicted.
//
// Emits KV events (BlockStored / BlockRemoved / AllBlocksCleared) into an optional log.
// Thread-safety: not thread-safe; owned by the engine's thread, like the BlockPool.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kv/block_hash.h"
#include "kv/block_pool.h"
#include "kv/kv_events.h"

namespace tokenfab {

class PrefixCache {
 public:
  // `pool` and `events` (may be null) must outlive the cache; installs the pool's evict listener.
  PrefixCache(BlockPool* pool, int32_t block_size, KvEventLog* events);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // The blocks of the longest cached run of hashes[0], hashes[1], ..., each with a new
  // reference that the caller owns (release through the pool).
  std::vector<BlockId> Acquire(std::span<const BlockHash> hashes);
  // How many leading hashes are cached, taking no references.
  int32_t CountCached(std::span<const BlockHash> hashes) const;

  // Registers computed full blocks: blocks[i] holds the KV of the block hashed chain[i], for i
  // in [from, chain.size()); `tokens` are the sequence's tokens (for the event). A hash that is
  // already cached keeps its block (this duplicate stays uncached).
  void Insert(std::span<const BlockHash> chain, std::span<const BlockId> blocks, size_t from,
              std::span<const int32_t> tokens, std::string_view cache_salt);

  // Pins a cached chain: its blocks are never evicted until unpinned. NotFound if any hash of
  // the chain is not cached (compute the prefix first). Pinning twice is a no-op.
  Status Pin(std::span<const BlockHash> chain);
  // Unpins the given hashes (those not pinned are ignored); they become evictable.
  void Unpin(std::span<const BlockHash> chain);
  int32_t num_pinned() const { return static_cast<int32_t>(pinned_.size()); }

  // Forgets every cached block (pins too); referenced blocks stay with their owners.
  void Clear();

  int32_t num_cached() const { return static_cast<int32_t>(by_hash_.size()); }
  bool Contains(const BlockHash& hash) const { return by_hash_.count(hash) > 0; }

 private:
  void OnEvict(BlockId block);
  void Publish(KvEvent event);

  BlockPool* pool_;
  int32_t block_size_;
  KvEventLog* events_;
  std::unordered_map<BlockHash, BlockId, BlockHashOf> by_hash_;
  std::vector<std::optional<BlockHash>> hash_of_block_;  // [num_blocks]
  std::unordered_set<BlockHash, BlockHashOf> pinned_;
};

}  // namespace tokenfab
