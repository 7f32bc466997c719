// PieceCache: lookups append the cached ids, the input-start flag is part of the key, and the
// least recently used spans go first once the bytes bound is passed.
#include "tokenizer/piece_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tokenfab {
namespace {

TEST(PieceCacheTest, HitsAppendMissesLeaveIdsAlone) {
  PieceCache cache(1 << 20);
  const std::string text(300, 'a');
  std::vector<int32_t> ids = {7};
  EXPECT_FALSE(cache.Lookup(text, false, &ids));
  EXPECT_EQ(ids, std::vector<int32_t>({7}));
  cache.Insert(text, false, std::vector<int32_t>{1, 2, 3});
  EXPECT_TRUE(cache.Lookup(text, false, &ids));
  EXPECT_EQ(ids, std::vector<int32_t>({7, 1, 2, 3}));
  EXPECT_FALSE(cache.Lookup(text, true, &ids)) << "at the input's start is another key";
}

TEST(PieceCacheTest, EvictsTheLeastRecentlyUsedPastItsBytes) {
  // Each entry: 300 bytes of text + 4 ids of 4 bytes = 316 bytes; three fit.
  PieceCache cache(3 * 316);
  const std::string a(300, 'a'), b(300, 'b'), c(300, 'c'), d(300, 'd');
  const std::vector<int32_t> ids = {1, 2, 3, 4};
  cache.Insert(a, false, ids);
  cache.Insert(b, false, ids);
  cache.Insert(c, false, ids);
  EXPECT_EQ(cache.bytes(), 3u * 316);
  std::vector<int32_t> out;
  EXPECT_TRUE(cache.Lookup(a, false, &out));  // a is now the most recent; b the least
  cache.Insert(d, false, ids);
  EXPECT_EQ(cache.bytes(), 3u * 316);
  EXPECT_FALSE(cache.Lookup(b, false, &out));
  EXPECT_TRUE(cache.Lookup(a, false, &out));
  EXPECT_TRUE(cache.Lookup(c, false, &out));
  EXPECT_TRUE(cache.Lookup(d, false, &out));
  cache.Insert(std::string(4000, 'e'), false, ids);  // larger than the whole cache: not kept
  EXPECT_EQ(cache.bytes(), 3u * 316);
}

}  // namespace
}  // namespace tokenfab
