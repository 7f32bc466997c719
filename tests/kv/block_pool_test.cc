#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "test_util.h"

namespace tokenfab {
namespace {

TEST(BlockPoolTest, HandsOutEveryBlockOnceThenIsExhausted) {
  BlockPool pool(5);
  EXPECT_EQ(pool.num_blocks(), 5);
  EXPECT_EQ(pool.num_free(), 5);
  std::set<BlockId> seen;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(const BlockId b, pool.Allocate());
    EXPECT_GE(b, 0);
    EXPECT_LT(b, 5);
    EXPECT_TRUE(seen.insert(b).second) << "block " << b << " handed out twice";
    EXPECT_EQ(pool.ref_count(b), 1);
    EXPECT_EQ(pool.num_used(), i + 1);
  }
  const auto more = pool.Allocate();
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(BlockPoolTest, FreshPoolHandsOutBlocksInOrder) {
  BlockPool pool(4);
  ASSERT_OK_AND_ASSIGN(const std::vector<BlockId> blocks, pool.AllocateMany(4));
  EXPECT_EQ(blocks, (std::vector<BlockId>{0, 1, 2, 3}));
}

TEST(BlockPoolTest, ReleaseReturnsTheBlockAndItIsReusedFirst) {
  BlockPool pool(4);
  ASSERT_OK_AND_ASSIGN(const std::vector<BlockId> blocks, pool.AllocateMany(3));
  pool.Release(blocks[1]);
  EXPECT_EQ(pool.ref_count(blocks[1]), 0);
  EXPECT_EQ(pool.num_free(), 2);
  ASSERT_OK_AND_ASSIGN(const BlockId again, pool.Allocate());
  EXPECT_EQ(again, blocks[1]) << "the most recently freed block is reused first";
  EXPECT_EQ(pool.ref_count(again), 1);
}

TEST(BlockPoolTest, SharedBlocksAreFreedByTheirLastReference) {
  BlockPool pool(2);
  ASSERT_OK_AND_ASSIGN(const BlockId b, pool.Allocate());
  pool.AddRef(b);
  pool.AddRef(b);
  EXPECT_EQ(pool.ref_count(b), 3);
  pool.Release(b);
  pool.Release(b);
  EXPECT_EQ(pool.ref_count(b), 1);
  EXPECT_EQ(pool.num_free(), 1) << "still referenced: not free";
  pool.Release(b);
  EXPECT_EQ(pool.ref_count(b), 0);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockPoolTest, AllocateManyIsAllOrNothing) {
  BlockPool pool(6);
  ASSERT_OK_AND_ASSIGN(const std::vector<BlockId> first, pool.AllocateMany(4));
  EXPECT_EQ(first.size(), 4u);
  const auto too_many = pool.AllocateMany(3);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.num_free(), 2) << "a failed AllocateMany must not keep any block";
  for (BlockId b : first) EXPECT_EQ(pool.ref_count(b), 1);
  ASSERT_OK_AND_ASSIGN(const std::vector<BlockId> rest, pool.AllocateMany(2));
  EXPECT_EQ(pool.num_free(), 0);
  std::vector<BlockId> all = first;
  all.insert(all.end(), rest.begin(), rest.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<BlockId>{0, 1, 2, 3, 4, 5}));
  ASSERT_OK_AND_ASSIGN(const std::vector<BlockId> none, pool.AllocateMany(0));
  EXPECT_TRUE(none.empty());
}

TEST(BlockPoolTest, EmptyPool) {
  BlockPool pool(0);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.Allocate().status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.AllocateMany(1).status().code(), StatusCode::kResourceExhausted);
}

TEST(BlockPoolDeathTest, MisuseIsAProgrammerError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  BlockPool pool(2);
  const BlockId b = pool.Allocate().value();
  pool.Release(b);
  EXPECT_DEATH(pool.Release(b), "double release");
  EXPECT_DEATH(pool.AddRef(b), "AddRef on free block");
  EXPECT_DEATH(pool.Release(7), "");
  EXPECT_DEATH((void)pool.ref_count(-1), "");
}

}  // namespace
}  // namespace tokenfab
