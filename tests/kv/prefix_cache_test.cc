// PrefixCache over a BlockPool: longest-prefix reuse with references, LRU eviction of
// unreferenced cached blocks (never-cached free blocks go first), pins, salts, and the KV
// events with their gap-free sequence numbers.
#include "kv/prefix_cache.h"

#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"

namespace tokenfab {
namespace {

constexpr int32_t kBlock = 4;

class PrefixCacheTest : public ::testing::Test {
 protected:
  PrefixCacheTest() : hasher_(SipKey{}, "m"), pool_(8), cache_(&pool_, kBlock, &events_) {}

  std::vector<BlockHash> Chain(const std::vector<int32_t>& tokens, const std::string& salt = "") {
    std::vector<BlockHash> chain;
    hasher_.ExtendChain(tokens, kBlock, salt, &chain);
    return chain;
  }
  // Allocates blocks for `tokens`, registers its full blocks and releases them (a finished
  // request): they stay cached and evictable.
  void Store(const std::vector<int32_t>& tokens, const std::string& salt = "") {
    const auto chain = Chain(tokens, salt);
    std::vector<BlockId> blocks = cache_.Acquire(chain);
    const size_t hit = blocks.size();
    const int32_t needed = static_cast<int32_t>((tokens.size() + kBlock - 1) / kBlock);
    auto fresh = pool_.AllocateMany(needed - static_cast<int32_t>(hit));
    ASSERT_OK(fresh);
    blocks.insert(blocks.end(), fresh->begin(), fresh->end());
    cache_.Insert(chain, blocks, hit, tokens, salt);
    for (BlockId b : blocks) pool_.Release(b);
  }
  std::vector<KvEvent> Events() { return events_.Read(0, 1000).events; }

  BlockHasher hasher_;
  KvEventLog events_;
  BlockPool pool_;
  PrefixCache cache_;
};

std::vector<int32_t> Range(int32_t from, int32_t n) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < n; ++i) v.push_back(from + i);
  return v;
}

TEST_F(PrefixCacheTest, ReusesTheLongestCachedPrefixWithReferences) {
  Store(Range(0, 10));  // blocks [0..3], [4..7] cached; [8, 9] partial, not cached
  EXPECT_EQ(cache_.num_cached(), 2);
  EXPECT_EQ(pool_.num_free(), 8) << "cached blocks without references count as free";
  EXPECT_EQ(pool_.num_evictable(), 2);
  std::vector<int32_t> other = Range(0, 8);
  other.push_back(99);
  other[5] = 42;  // diverges in the second block
  const auto chain = Chain(other);
  EXPECT_EQ(cache_.CountCached(chain), 1);
  const std::vector<BlockId> hit = cache_.Acquire(chain);
  ASSERT_EQ(hit.size(), 1u);
  EXPECT_EQ(pool_.ref_count(hit[0]), 1);
  EXPECT_EQ(pool_.num_evictable(), 1);
  // A second user of the same block shares it.
  const std::vector<BlockId> again = cache_.Acquire(chain);
  EXPECT_EQ(again, hit);
  EXPECT_EQ(pool_.ref_count(hit[0]), 2);
  pool_.Release(hit[0]);
  pool_.Release(hit[0]);
  EXPECT_EQ(pool_.num_evictable(), 2);
}

TEST_F(PrefixCacheTest, SaltsIsolateTenants) {
  Store(Range(0, 8), "tenant-a");
  EXPECT_EQ(cache_.CountCached(Chain(Range(0, 8), "tenant-a")), 2);
  EXPECT_EQ(cache_.CountCached(Chain(Range(0, 8), "tenant-b")), 0);
  EXPECT_EQ(cache_.CountCached(Chain(Range(0, 8))), 0);
}

TEST_F(PrefixCacheTest, EvictsLeastRecentlyUsedOnlyAfterNeverCachedBlocks) {
  Store(Range(0, 8));     // 2 cached blocks, used first
  Store(Range(100, 8));   // 2 more, used later
  ASSERT_EQ(pool_.num_evictable(), 4);
  // 4 never-cached blocks are free: taking them evicts nothing.
  auto plain = pool_.AllocateMany(4);
  ASSERT_OK(plain);
  EXPECT_EQ(cache_.num_cached(), 4);
  // Touch the older prefix: it becomes the most recently used.
  for (BlockId b : cache_.Acquire(Chain(Range(0, 8)))) pool_.Release(b);
  auto one = pool_.Allocate();  // evicts the LRU block: the first of Range(100, 8)
  ASSERT_OK(one);
  EXPECT_EQ(cache_.num_cached(), 3);
  EXPECT_EQ(cache_.CountCached(Chain(Range(0, 8))), 2);
  EXPECT_EQ(cache_.CountCached(Chain(Range(100, 8))), 0);
  const auto events = Events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type, KvEvent::Type::kBlockRemoved);
  EXPECT_EQ(events.back().block_hashes[0], Chain(Range(100, 8))[0]);
}

TEST_F(PrefixCacheTest, PinnedPrefixesAreNeverEvicted) {
  Store(Range(0, 8));
  const auto chain = Chain(Range(0, 8));
  ASSERT_OK(cache_.Pin(chain));
  ASSERT_OK(cache_.Pin(chain));  // idempotent
  EXPECT_EQ(cache_.num_pinned(), 2);
  EXPECT_EQ(pool_.num_free(), 6);
  auto rest = pool_.AllocateMany(6);
  ASSERT_OK(rest);
  EXPECT_FALSE(pool_.Allocate().ok()) << "pinned blocks must not be handed out";
  EXPECT_EQ(cache_.CountCached(chain), 2);
  EXPECT_EQ(cache_.Pin(Chain(Range(50, 4))).code(), StatusCode::kNotFound);
  cache_.Unpin(chain);
  EXPECT_EQ(pool_.num_free(), 2);
  ASSERT_OK(pool_.AllocateMany(2));
  EXPECT_EQ(cache_.num_cached(), 0);
}

TEST_F(PrefixCacheTest, EventsCarryChainsTokensAndGapFreeIds) {
  Store(Range(0, 8), "s");
  Store(Range(0, 12), "s");  // the first two blocks hit; only the third is stored
  const auto events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event_id, 1u);
  EXPECT_EQ(events[1].event_id, 2u);
  const auto chain = Chain(Range(0, 12), "s");
  EXPECT_EQ(events[0].block_hashes, (std::vector<BlockHash>{chain[0], chain[1]}));
  EXPECT_FALSE(events[0].parent_block_hash.has_value());
  EXPECT_EQ(events[0].token_ids, Range(0, 8));
  EXPECT_EQ(events[1].block_hashes, (std::vector<BlockHash>{chain[2]}));
  EXPECT_EQ(events[1].parent_block_hash, chain[1]);
  EXPECT_EQ(events[1].token_ids, Range(8, 4));
  EXPECT_EQ(events[1].cache_salt, "s");
  EXPECT_EQ(events[1].block_size, kBlock);
  const Json j = events[1].ToJson();
  EXPECT_EQ(j["type"], "BlockStored");
  EXPECT_EQ(j["parent_block_hash"], BlockHashHex(chain[1]));
  cache_.Clear();
  EXPECT_EQ(cache_.num_cached(), 0);
  EXPECT_EQ(pool_.num_evictable(), 0);
  EXPECT_EQ(pool_.num_free(), 8);
  const auto page = events_.Read(2, 10);
  ASSERT_EQ(page.events.size(), 1u);
  EXPECT_EQ(page.events[0].type, KvEvent::Type::kAllBlocksCleared);
  EXPECT_EQ(page.last_id, 3u);
}

TEST(KvEventLogTest, DropsTheOldestAndReportsIt) {
  KvEventLog log(3);
  for (int i = 0; i < 5; ++i) log.Append(KvEvent{});
  const auto page = log.Read(0, 10);
  EXPECT_EQ(page.first_retained_id, 3u) << "a reader at 0 can see it missed events 1 and 2";
  ASSERT_EQ(page.events.size(), 3u);
  EXPECT_EQ(page.events[0].event_id, 3u);
  EXPECT_EQ(log.Read(4, 10).events.size(), 1u);
  EXPECT_EQ(log.Read(5, 10).events.size(), 0u);
  EXPECT_EQ(log.Read(3, 1).events.size(), 1u);
}

}  // namespace
}  // namespace tokenfab
