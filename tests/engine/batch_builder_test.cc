#include "engine/batch_builder.h"

#include <gtest/gtest.h>

#include <vector>

#include "test_util.h"

namespace tokenfab {
namespace {

TEST(EnsureBlocksTest, GrowsToCoverTheTokensAndNoFurther) {
  BlockPool pool(10);
  std::vector<BlockId> blocks;
  ASSERT_OK(EnsureBlocks(pool, 4, 0, &blocks));
  EXPECT_TRUE(blocks.empty());
  ASSERT_OK(EnsureBlocks(pool, 4, 1, &blocks));
  EXPECT_EQ(blocks.size(), 1u);
  ASSERT_OK(EnsureBlocks(pool, 4, 4, &blocks));
  EXPECT_EQ(blocks.size(), 1u);
  ASSERT_OK(EnsureBlocks(pool, 4, 5, &blocks));
  EXPECT_EQ(blocks.size(), 2u);
  ASSERT_OK(EnsureBlocks(pool, 4, 17, &blocks));
  EXPECT_EQ(blocks.size(), 5u);
  ASSERT_OK(EnsureBlocks(pool, 4, 3, &blocks));  // never shrinks
  EXPECT_EQ(blocks.size(), 5u);
  EXPECT_EQ(pool.num_used(), 5);
  ReleaseBlocks(pool, &blocks);
  EXPECT_TRUE(blocks.empty());
  EXPECT_EQ(pool.num_free(), 10);
}

TEST(EnsureBlocksTest, AllocatesNothingWhenTheCacheCannotCover) {
  BlockPool pool(3);
  std::vector<BlockId> a, b;
  ASSERT_OK(EnsureBlocks(pool, 16, 20, &a));  // 2 blocks
  const std::vector<BlockId> before = b;
  const Status s = EnsureBlocks(pool, 16, 40, &b);  // needs 3, 1 free
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(b, before);
  EXPECT_EQ(pool.num_free(), 1);
}

TEST(EnsureBlocksTest, OneTokenPages) {
  BlockPool pool(8);
  std::vector<BlockId> blocks;
  ASSERT_OK(EnsureBlocks(pool, 1, 7, &blocks));
  EXPECT_EQ(blocks.size(), 7u);
}

TEST(BuildForwardBatchTest, LaysSequencesOutOneAfterAnother) {
  // Block size 4. Sequence A: a 6-token prefill, blocks {7, 2}. Sequence B: one decode token
  // after 9 cached tokens, blocks {5, 0, 3}. Sequence C: a 2-token chunk after 3 cached tokens,
  // blocks {1, 6}, no logits wanted.
  const std::vector<int32_t> a_tokens = {10, 11, 12, 13, 14, 15}, b_tokens = {20},
                             c_tokens = {30, 31};
  const std::vector<BlockId> a_blocks = {7, 2}, b_blocks = {5, 0, 3}, c_blocks = {1, 6};
  const std::vector<SequenceChunk> chunks = {
      {a_tokens, 0, a_blocks, LogitRows::kLast},
      {b_tokens, 9, b_blocks, LogitRows::kLast},
      {c_tokens, 3, c_blocks, LogitRows::kNone},
  };
  const ForwardBatch b = BuildForwardBatch(chunks, 4);
  EXPECT_EQ(b.num_tokens(), 9);
  EXPECT_EQ(b.num_seqs(), 3);
  EXPECT_EQ(b.token_ids, (std::vector<int32_t>{10, 11, 12, 13, 14, 15, 20, 30, 31}));
  EXPECT_EQ(b.positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 9, 3, 4}));
  // position p of a sequence -> blocks[p / 4] * 4 + p % 4
  EXPECT_EQ(b.slot_mapping, (std::vector<int32_t>{28, 29, 30, 31, 8, 9, 13, 7, 24}));
  EXPECT_EQ(b.query_start, (std::vector<int32_t>{0, 6, 7, 9}));
  EXPECT_EQ(b.seq_lens, (std::vector<int32_t>{6, 10, 5}));
  EXPECT_EQ(b.max_blocks_per_seq, 3);
  EXPECT_EQ(b.block_tables, (std::vector<int32_t>{7, 2, -1, 5, 0, 3, 1, 6, -1}));
  EXPECT_EQ(b.logit_rows, (std::vector<int32_t>{5, 6}));
}

TEST(BuildForwardBatchTest, AllLogitRowsForScoring) {
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<BlockId> blocks = {4, 9};
  const std::vector<int32_t> other = {8};
  const std::vector<BlockId> other_blocks = {0};
  const std::vector<SequenceChunk> chunks = {
      {other, 0, other_blocks, LogitRows::kLast},
      {tokens, 2, blocks, LogitRows::kAll},
  };
  const ForwardBatch b = BuildForwardBatch(chunks, 3);
  EXPECT_EQ(b.logit_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(b.positions, (std::vector<int32_t>{0, 2, 3, 4}));
  EXPECT_EQ(b.slot_mapping, (std::vector<int32_t>{0, 14, 27, 28}));
  EXPECT_EQ(b.block_tables, (std::vector<int32_t>{0, -1, 4, 9}));
}

TEST(BuildForwardBatchTest, OneTokenPages) {
  const std::vector<int32_t> tokens = {5, 6, 7};
  const std::vector<BlockId> blocks = {3, 0, 2, 1};
  const std::vector<SequenceChunk> chunks = {{tokens, 1, blocks, LogitRows::kAll}};
  const ForwardBatch b = BuildForwardBatch(chunks, 1);
  EXPECT_EQ(b.slot_mapping, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(b.seq_lens, (std::vector<int32_t>{4}));
  EXPECT_EQ(b.block_tables, (std::vector<int32_t>{3, 0, 2, 1}));
}

TEST(BuildForwardBatchDeathTest, TooFewBlocksIsAProgrammerError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  const std::vector<BlockId> blocks = {0};
  const std::vector<SequenceChunk> chunks = {{tokens, 0, blocks, LogitRows::kLast}};
  EXPECT_DEATH(BuildForwardBatch(chunks, 4), "too few KV blocks");
}

}  // namespace
}  // namespace tokenfab
