#include "kv/prefix_cache.h"

namespace tokenfab {

PrefixCache::PrefixCache(BlockPool* pool, int32_t block_size, KvEventLog* events)
    : pool_(pool), block_size_(block_size), events_(events), hash_of_block_(pool->num_blocks()) {
  pool_->set_evict_listener([this](BlockId block) { OnEvict(block); });
}

PrefixCache::~PrefixCache() { pool_->set_evict_listener(nullptr); }

void PrefixCache::Publish(KvEvent event) {
  if (events_ == nullptr) return;
  event.block_size = block_size_;
  events_->Append(std::move(event));
}

std::vector<BlockId> PrefixCache::Acquire(std::span<const BlockHash> hashes) {
  std::vector<BlockId> blocks;
  for (const BlockHash& h : hashes) {
    const auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    pool_->AcquireCached(it->second);
    blocks.push_back(it->second);
  }
  return blocks;
}

int32_t PrefixCache::CountCached(std::span<const BlockHash> hashes) const {
  int32_t n = 0;
  for (const BlockHash& h : hashes) {
    if (by_hash_.count(h) == 0) break;
    ++n;
  }
  return n;
}

void PrefixCache::Insert(std::span<const BlockHash> chain, std::span<const BlockId> blocks,
                         size_t from, std::span<const int32_t> tokens,
                         std::string_view cache_salt) {
  CHECK_LE(chain.size(), blocks.size());
  CHECK_LE(chain.size() * block_size_, tokens.size());
  KvEvent stored;
  stored.type = KvEvent::Type::kBlockStored;
  stored.cache_salt = std::string(cache_salt);
  auto flush = [&] {
    if (!stored.block_hashes.empty()) Publish(stored);
    stored.block_hashes.clear();
    stored.token_ids.clear();
  };
  for (size_t i = from; i < chain.size(); ++i) {
    const BlockId block = blocks[i];
    if (by_hash_.count(chain[i]) > 0) {
      flush();  // an event covers one contiguous run of new blocks
      continue;
    }
    CHECK(!pool_->is_cached(block)) << "block " << block << " is cached under another hash";
    by_hash_.emplace(chain[i], block);
    pool_->MarkCached(block);
    hash_of_block_[block] = chain[i];
    if (stored.block_hashes.empty()) {
      stored.parent_block_hash = i > 0 ? std::optional<BlockHash>(chain[i - 1]) : std::nullopt;
    }
    stored.block_hashes.push_back(chain[i]);
    const auto block_tokens = tokens.subspan(i * block_size_, block_size_);
    stored.token_ids.insert(stored.token_ids.end(), block_tokens.begin(), block_tokens.end());
  }
  flush();
}

void PrefixCache::OnEvict(BlockId block) {
  std::optional<BlockHash>& hash = hash_of_block_[block];
  if (!hash) return;
  by_hash_.erase(*hash);
  KvEvent removed;
  removed.type = KvEvent::Type::kBlockRemoved;
  removed.block_hashes.push_back(*hash);
  hash.reset();
  Publish(std::move(removed));
}

Status PrefixCache::Pin(std::span<const BlockHash> chain) {
  if (CountCached(chain) != static_cast<int32_t>(chain.size())) {
    return NotFoundError("the prefix to pin is not (or no longer) in the prefix cache");
  }
  for (const BlockHash& h : chain) {
    if (!pinned_.insert(h).second) continue;
    pool_->AcquireCached(by_hash_.at(h));
  }
  return Status::Ok();
}

void PrefixCache::Unpin(std::span<const BlockHash> chain) {
  for (const BlockHash& h : chain) {
    if (pinned_.erase(h) == 0) continue;
    pool_->Release(by_hash_.at(h));
  }
}

void PrefixCache::Clear() {
  for (const BlockHash& h : pinned_) pool_->Release(by_hash_.at(h));
  pinned_.clear();
  for (const auto& [hash, block] : by_hash_) {
    hash_of_block_[block].reset();
    pool_->Uncache(block);
  }
  by_hash_.clear();
  KvEvent cleared;
  cleared.type = KvEvent::Type::kAllBlocksCleared;
  Publish(std::move(cleared));
}

}  // namespace tokenfab
