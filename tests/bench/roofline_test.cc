// The roofline's flop and byte counts against identities they must satisfy: a prompt prefilled
// whole costs what its two halves cost, the second after the first (less the one lm_head row
// the split adds), with and without a sliding window.
#include "bench/roofline.h"

#include <gtest/gtest.h>

namespace tokenfab {
namespace {

ModelConfig SmallDense(int64_t window) {
  ModelConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 100;
  c.sliding_window = {window, 0};  // layer 0 windowed (when window > 0), layer 1 full
  return c;
}

TEST(RooflineTest, PrefillAfterAPrefixAddsUpToTheWholePrompt) {
  for (const int64_t window : {0, 5, 30, 1000}) {
    const ModelConfig c = SmallDense(window);
    const double lm_head_row = 2.0 * c.vocab_size * c.hidden_size;
    for (const int prefix : {1, 7, 40}) {
      for (const int n : {1, 9, 50}) {
        EXPECT_NEAR(PrefillFlops(c, prefix) + PrefillFlops(c, n, prefix),
                    PrefillFlops(c, prefix + n) + lm_head_row,
                    1e-9 * PrefillFlops(c, prefix + n))
            << "window " << window << " prefix " << prefix << " n " << n;
      }
    }
  }
}

TEST(RooflineTest, PrefillAttentionCountsCausalPairs) {
  const ModelConfig c = SmallDense(0);
  const double per_pair = 4.0 * c.num_heads * c.head_dim * c.num_layers;
  // 3 new tokens after 2 cached: 3 + 4 + 5 keys.
  EXPECT_DOUBLE_EQ(PrefillFlops(c, 3, 2) - PrefillFlops(c, 3, 0), (12.0 - 6.0) * per_pair);
}

TEST(RooflineTest, PrefillBytesAreTheWeightsAndThePrefixKv) {
  const ModelConfig c = SmallDense(0);
  EXPECT_DOUBLE_EQ(PrefillBytes(c, 10, 0, 2, 2), DecodeWeightBytes(c, 10, 2));
  EXPECT_DOUBLE_EQ(PrefillBytes(c, 10, 30, 2, 2) - PrefillBytes(c, 10, 0, 2, 2),
                   30.0 * c.num_layers * 2 * c.kv_size() * 2);
}

}  // namespace
}  // namespace tokenfab
