// SipHash-2-4-128 against the reference implementation's published vectors (veorq/SipHash
// vectors.h, vectors_sip128: key 00..0f, message 00..len-1), and block hashes' chaining and
// separation of model, salt and key.
#include "kv/siphash.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kv/block_hash.h"
#include "test_util.h"

namespace tokenfab {
namespace {

SipKey ReferenceKey() {
  SipKey k;
  for (int i = 0; i < 16; ++i) k[i] = static_cast<uint8_t>(i);
  return k;
}

std::string Hex(const std::array<uint8_t, 16>& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

TEST(SipHash128Test, ReferenceVectors) {
  // vectors_sip128[len] for the lengths that cover every tail size and several words.
  const std::vector<std::pair<int, std::string>> vectors = {
      {0, "a3817f04ba25a8e66df67214c7550293"},  {1, "da87c1d86b99af44347659119b22fc45"},
      {2, "8177228da4a45dc7fca38bdef60affe4"},  {3, "9c70b60c5267a94e5f33b6b02985ed51"},
      {4, "f88164c12d9c8faf7d0f6e7c7bcd5579"},  {5, "1368875980776f8854527a07690e9627"},
      {6, "14eeca338b208613485ea0308fd7a15e"},  {7, "a1f1ebbed8dbc153c0b84aa61ff08239"},
      {8, "3b62a9ba6258f5610f83e264f31497b4"},  {9, "264499060ad9baabc47f8b02bb6d71ed"},
      {15, "5493e99933b0a8117e08ec0f97cfc3d9"}, {16, "6ee2a4ca67b054bbfd3315bf85230577"},
      {17, "473d06e8738db89854c066c47ae47740"}, {31, "2939b0183223fafc1723de4f52c43d35"},
      {32, "7c3956ca5eeafc3e363e9d556546eb68"}, {63, "5150d1772f50834a503e069a973fbd7c"},
  };
  std::vector<uint8_t> message(64);
  for (int i = 0; i < 64; ++i) message[i] = static_cast<uint8_t>(i);
  for (const auto& [len, want] : vectors) {
    EXPECT_EQ(Hex(SipHash128(ReferenceKey(), message.data(), len).Bytes()), want) << "len " << len;
  }
}

TEST(BlockHashTest, ChainsAndSeparatesModelSaltAndKey) {
  const BlockHasher hasher(ReferenceKey(), "model-a");
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<BlockHash> chain;
  hasher.ExtendChain(tokens, 4, "", &chain);
  ASSERT_EQ(chain.size(), 2u);  // the partial third block is not hashed
  EXPECT_EQ(chain[0], hasher.Hash(std::nullopt, std::span(tokens).first(4), ""));
  EXPECT_EQ(chain[1], hasher.Hash(chain[0], std::span(tokens).subspan(4, 4), ""));
  // The same tokens with another parent, salt, model or key hash differently.
  EXPECT_NE(chain[1], hasher.Hash(std::nullopt, std::span(tokens).subspan(4, 4), ""));
  EXPECT_NE(chain[0], hasher.Hash(std::nullopt, std::span(tokens).first(4), "tenant-1"));
  EXPECT_NE(chain[0], BlockHasher(ReferenceKey(), "model-b").Hash(std::nullopt, std::span(tokens).first(4), ""));
  SipKey other = ReferenceKey();
  other[0] ^= 1;
  EXPECT_NE(chain[0], BlockHasher(other, "model-a").Hash(std::nullopt, std::span(tokens).first(4), ""));
  // Extending an existing chain gives the same hashes as hashing all at once.
  std::vector<int32_t> longer = tokens;
  for (int i = 0; i < 8; ++i) longer.push_back(100 + i);
  std::vector<BlockHash> extended = chain;
  hasher.ExtendChain(longer, 4, "", &extended);
  std::vector<BlockHash> fresh;
  hasher.ExtendChain(longer, 4, "", &fresh);
  EXPECT_EQ(extended, fresh);
  EXPECT_EQ(BlockHashHex(chain[0]).size(), 32u);
}

TEST(BlockHashTest, KeysParseFromHex) {
  ASSERT_OK_AND_ASSIGN(const SipKey key, BlockHasher::ParseKey("000102030405060708090a0B0c0d0e0f"));
  EXPECT_EQ(key, ReferenceKey());
  EXPECT_FALSE(BlockHasher::ParseKey("0001").ok());
  EXPECT_FALSE(BlockHasher::ParseKey("zz0102030405060708090a0b0c0d0e0f").ok());
  EXPECT_NE(BlockHasher::RandomKey(), BlockHasher::RandomKey());
}

}  // namespace
}  // namespace tokenfab
