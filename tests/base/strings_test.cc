#include "base/strings.h"

#include <gtest/gtest.h>

namespace tokenfab {
namespace {

TEST(StringsTest, ParseIntList) {
  EXPECT_EQ(*ParseIntList("1, 2,3", "t"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(ParseIntList("", "t")->empty());
  EXPECT_FALSE(ParseIntList("1,,2", "t").ok());
  EXPECT_FALSE(ParseIntList("1,x", "t").ok());
  EXPECT_FALSE(ParseIntList("99999999999999999999", "t").ok());
  EXPECT_EQ(ParseIntList("1,x", "--tokens").status().message(), "--tokens: not an integer: 'x'");
}

TEST(StringsTest, ParseDouble) {
  EXPECT_EQ(*ParseDouble(" 0.5 ", "t"), 0.5);
  EXPECT_FALSE(ParseDouble("nan", "t").ok());
  EXPECT_FALSE(ParseDouble("1e999", "t").ok());
  EXPECT_FALSE(ParseDouble("0.5x", "t").ok());
}

}  // namespace
}  // namespace tokenfab
