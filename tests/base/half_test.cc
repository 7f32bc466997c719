#include "base/half.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace tokenfab {
namespace {

TEST(HalfTest, Bf16RoundTripsAndRoundsToNearestEven) {
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 3.140625f, 0x1p-100f, 65536.0f}) {
    EXPECT_EQ(Bf16ToFloat(FloatToBf16(f)), f) << f;  // all exactly representable in bf16
  }
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::infinity()))));
}

TEST(HalfTest, F16AllValuesRoundTrip) {
  // Every finite f16 converts to float and back to the same bits.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
    EXPECT_EQ(FloatToF16(F16ToFloat(h)), h) << std::hex << bits;
  }
  EXPECT_EQ(F16ToFloat(0x3c00), 1.0f);
  EXPECT_EQ(F16ToFloat(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(F16ToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(FloatToF16(1e6f), 0x7c00);  // overflow to inf
  EXPECT_EQ(FloatToF16(0x1p-26f), 0);   // below half the smallest subnormal
}

}  // namespace
}  // namespace tokenfab
