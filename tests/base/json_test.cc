#include "base/json.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace tokenfab {
namespace {

TEST(JsonTest, ParseErrorsNameTheSource) {
  const auto bad = ParseJson("{\"a\": ", "config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("config.json: invalid JSON"), std::string::npos);
}

TEST(JsonTest, TypedFields) {
  ASSERT_OK_AND_ASSIGN(const Json j, ParseJson(R"({"n": 4096.0, "x": 1.5, "s": "hi",
      "b": true, "l": [1, 2], "one": 7, "nul": null, "o": {"k": 1}})", "t"));
  ASSERT_OK_AND_ASSIGN(const JsonObject o, JsonObject::From(j, "t"));
  EXPECT_EQ(*o.Int("n"), 4096);
  EXPECT_FALSE(o.Int("x").ok());
  EXPECT_EQ(o.Int("x").status().message(), "t: field 'x' must be an integer");
  EXPECT_EQ(*o.Number("x"), 1.5);
  EXPECT_EQ(*o.String("s"), "hi");
  EXPECT_FALSE(o.String("n").ok());
  EXPECT_TRUE(*o.BoolOr("b", false));
  EXPECT_EQ(*o.IntOr("nul", 3), 3);
  EXPECT_EQ(*o.IntOr("missing", 5), 5);
  EXPECT_EQ(o.Int("missing").status().message(), "t: missing field 'missing'");
  EXPECT_EQ(*o.IntList("l"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*o.IntList("one"), (std::vector<int64_t>{7}));
  EXPECT_TRUE(o.IntList("missing")->empty());
  ASSERT_OK_AND_ASSIGN(const JsonObject inner, o.Object("o"));
  EXPECT_EQ(inner.context(), "t: o");
  EXPECT_FALSE(o.Object("s").ok());
}

}  // namespace
}  // namespace tokenfab
