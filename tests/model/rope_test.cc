// RoPE inverse frequencies against the formulas of transformers' modeling_rope_utils, evaluated
// here in double: default theta^(-2i/d), linear (divided by factor) and llama3 (long wavelengths
// divided by factor, short ones kept, the band between interpolated).
#include "model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/model_config.h"

namespace tokenfab {
namespace {

ModelConfig Config(int64_t head_dim, double theta) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope.theta = theta;
  return c;
}

std::vector<double> Reference(const ModelConfig& c) {
  const int64_t d = c.head_dim;
  std::vector<double> inv(d / 2);
  for (int64_t i = 0; i < d / 2; ++i) inv[i] = std::pow(c.rope.theta, -2.0 * i / d);
  const RopeConfig& r = c.rope;
  if (r.type == "linear") {
    for (double& f : inv) f /= r.factor;
  } else if (r.type == "llama3") {
    const double low_wavelen = r.original_max_position_embeddings / r.low_freq_factor;
    const double high_wavelen = r.original_max_position_embeddings / r.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2 * M_PI / f;
      if (wavelen < high_wavelen) continue;  // high frequency: kept
      if (wavelen > low_wavelen) {           // low frequency: scaled
        f /= r.factor;
        continue;
      }
      const double smooth = (r.original_max_position_embeddings / wavelen - r.low_freq_factor) /
                            (r.high_freq_factor - r.low_freq_factor);
      f = (1 - smooth) * f / r.factor + smooth * f;
    }
  }
  return inv;
}

// The f32 computation (as transformers does it) agrees with the exact values to a few f32
// roundings of theta^x (whose relative error grows with ln(theta)).
void ExpectMatches(const ModelConfig& c) {
  const std::vector<float> got = ComputeRopeInvFreq(c);
  const std::vector<double> want = Reference(c);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 2e-6 * want[i]) << "i = " << i;
  }
}

TEST(RopeTest, DefaultFrequencies) {
  for (int64_t d : {2, 16, 24, 64, 128, 256}) {
    for (double theta : {10000.0, 500000.0, 1e6}) {
      SCOPED_TRACE(::testing::Message() << "head_dim " << d << " theta " << theta);
      ExpectMatches(Config(d, theta));
    }
  }
  const std::vector<float> f = ComputeRopeInvFreq(Config(128, 10000.0));
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_NEAR(f[32], 0.01, 1e-8);  // 10000^(-64/128)
}

TEST(RopeTest, LinearScaling) {
  ModelConfig c = Config(24, 10000.0);
  c.rope.type = "linear";
  c.rope.factor = 4.0;
  ExpectMatches(c);
  EXPECT_FLOAT_EQ(ComputeRopeInvFreq(c)[0], 0.25f);
}

TEST(RopeTest, Llama3Scaling) {
  // Llama 3.1's parameters; all three regimes occur for head_dim 128.
  ModelConfig c = Config(128, 500000.0);
  c.rope.type = "llama3";
  c.rope.factor = 8.0;
  c.rope.low_freq_factor = 1.0;
  c.rope.high_freq_factor = 4.0;
  c.rope.original_max_position_embeddings = 8192;
  ExpectMatches(c);
  const std::vector<float> got = ComputeRopeInvFreq(c);
  const std::vector<float> plain = ComputeRopeInvFreq(Config(128, 500000.0));
  int kept = 0, scaled = 0, smoothed = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == plain[i]) {
      ++kept;
    } else if (std::fabs(got[i] - plain[i] / 8.0f) <= 1e-6f * plain[i]) {
      ++scaled;
    } else {
      ++smoothed;
      EXPECT_LT(got[i], plain[i]);
      EXPECT_GT(got[i], plain[i] / 8.0f);
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(smoothed, 0);
  // The golden checkpoint's small variant (original context 32, head_dim 16).
  ModelConfig small = Config(16, 10000.0);
  small.rope = c.rope;
  small.rope.theta = 10000.0;
  small.rope.original_max_position_embeddings = 32;
  ExpectMatches(small);
}

}  // namespace
}  // namespace tokenfab
