// The safetensors header parser against valid files and every way a file can lie: truncation,
// a corrupt length, offsets past the end or backwards, sizes that disagree with shape and dtype,
// integer overflow in the shape, malformed entries. Unknown element types are kept (and refused
// only when a model asks for that tensor: model_weights_test.cc).
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "checkpoint_files.h"
#include "test_util.h"

namespace tokenfab {
namespace {

using testing::EncodeSafetensors;
using testing::F32Bytes;
using testing::RawSafetensors;

Result<SafetensorsHeader> Parse(const std::string& bytes) {
  return ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                "shard.safetensors");
}

// DataLoss naming the file and containing `needle`.
void ExpectCorrupt(const std::string& bytes, const std::string& needle) {
  const auto h = Parse(bytes);
  ASSERT_FALSE(h.ok()) << "accepted a corrupt file (" << needle << ")";
  EXPECT_EQ(h.status().code(), StatusCode::kDataLoss) << h.status().ToString();
  EXPECT_EQ(h.status().message().rfind("shard.safetensors", 0), 0u) << h.status().message();
  EXPECT_NE(h.status().message().find(needle), std::string::npos) << h.status().message();
}

TEST(SafetensorsTest, ParsesAValidFile) {
  const std::string a = F32Bytes({1, 2, 3, 4, 5, 6});
  const std::string b(2 * 2, '\x7f');
  const std::string file = EncodeSafetensors(
      {{"a", "F32", {2, 3}, a}, {"b.weight", "BF16", {2}, b}, {"scalar", "F32", {}, F32Bytes({7})}},
      Json{{"format", "pt"}});
  ASSERT_OK_AND_ASSIGN(const SafetensorsHeader h, Parse(file));
  ASSERT_EQ(h.tensors.size(), 3u) << "__metadata__ is not a tensor";
  const uint64_t header_len = file.size() - a.size() - b.size() - 4 - 8;
  EXPECT_EQ(h.data_start, 8 + header_len);
  const SafetensorsEntry& ea = h.tensors.at("a");
  EXPECT_EQ(ea.dtype, SafeDType::kF32);
  EXPECT_EQ(ea.dtype_name, "F32");
  EXPECT_EQ(ea.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ea.offset, h.data_start);
  EXPECT_EQ(ea.size, 24u);
  EXPECT_EQ(file.substr(ea.offset, ea.size), a);
  const SafetensorsEntry& eb = h.tensors.at("b.weight");
  EXPECT_EQ(eb.dtype, SafeDType::kBF16);
  EXPECT_EQ(eb.offset, h.data_start + 24);
  EXPECT_EQ(file.substr(eb.offset, eb.size), b);
  EXPECT_TRUE(h.tensors.at("scalar").shape.empty());
}

TEST(SafetensorsTest, EveryKnownDType) {
  const std::pair<const char*, int> dtypes[] = {{"F32", 4}, {"BF16", 2}, {"F16", 2}, {"F64", 8},
                                                {"I64", 8}, {"I32", 4},  {"I16", 2}, {"I8", 1},
                                                {"U8", 1},  {"BOOL", 1}};
  for (auto [name, size] : dtypes) {
    ASSERT_OK_AND_ASSIGN(const auto h,
                         Parse(EncodeSafetensors({{"t", name, {3}, std::string(3 * size, '\1')}})));
    EXPECT_EQ(SafeDTypeName(h.tensors.at("t").dtype), name);
    ExpectCorrupt(EncodeSafetensors({{"t", name, {3}, std::string(3 * size + 1, '\1')}}),
                  "do not match");
  }
}

TEST(SafetensorsTest, EmptyTensorsAndEmptyFiles) {
  ASSERT_OK_AND_ASSIGN(const auto h, Parse(EncodeSafetensors({{"empty", "F32", {0, 5}, ""}})));
  EXPECT_EQ(h.tensors.at("empty").size, 0u);
  ASSERT_OK_AND_ASSIGN(const auto none, Parse(RawSafetensors("{}", "")));
  EXPECT_TRUE(none.tensors.empty());
}

TEST(SafetensorsTest, UnknownDTypesAreKeptUnchecked) {
  // FP8 weights may sit beside the ones a model uses; their size cannot be checked here.
  ASSERT_OK_AND_ASSIGN(const auto h,
                       Parse(EncodeSafetensors({{"scales", "F8_E4M3", {4}, std::string(4, '\0')},
                                                {"w", "F32", {1}, F32Bytes({1})}})));
  EXPECT_EQ(h.tensors.at("scales").dtype, SafeDType::kOther);
  EXPECT_EQ(h.tensors.at("scales").dtype_name, "F8_E4M3");
  EXPECT_EQ(h.tensors.at("w").dtype, SafeDType::kF32);
  // Still bounded by the file.
  ExpectCorrupt(RawSafetensors(R"({"x":{"dtype":"F8_E5M2","shape":[8],"data_offsets":[0,8]}})",
                               std::string(4, '\0')),
                "outside");
}

TEST(SafetensorsTest, Truncated) {
  ExpectCorrupt("", "truncated");
  ExpectCorrupt(std::string("\x10\0\0\0", 4), "truncated");
  const std::string valid = EncodeSafetensors({{"a", "F32", {4}, F32Bytes({1, 2, 3, 4})}});
  // Cut inside the header, and inside the data.
  ExpectCorrupt(valid.substr(0, 20), "truncated");
  ExpectCorrupt(valid.substr(0, valid.size() - 1), "outside");
  ExpectCorrupt(valid.substr(0, 8), "truncated");
}

TEST(SafetensorsTest, CorruptHeaderLength) {
  const std::string valid = EncodeSafetensors({{"a", "F32", {1}, F32Bytes({1})}});
  std::string huge = valid;
  for (int i = 0; i < 8; ++i) huge[i] = '\xff';  // 2^64 - 1: must not overflow 8 + length
  ExpectCorrupt(huge, "header");
  std::string big = valid;
  big[5] = '\x01';  // 2^40 + small
  ExpectCorrupt(big, "header");
  // A length 3 bytes short: the JSON is cut off and the rest taken for data.
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = len << 8 | static_cast<uint8_t>(valid[i]);
  ExpectCorrupt(RawSafetensors(valid.substr(8, len - 3), valid.substr(8 + len - 3)), "JSON");
}

TEST(SafetensorsTest, MalformedHeaders) {
  ExpectCorrupt(RawSafetensors("not json", ""), "invalid JSON");
  ExpectCorrupt(RawSafetensors("[1, 2]", ""), "not a JSON object");
  ExpectCorrupt(RawSafetensors(R"({"a": 3})", ""), "'a'");
  ExpectCorrupt(RawSafetensors(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", "abcd"),
                "dtype");
  ExpectCorrupt(
      RawSafetensors(R"({"a": {"dtype": 5, "shape": [1], "data_offsets": [0, 4]}})", "abcd"),
      "dtype");
  ExpectCorrupt(RawSafetensors(R"({"a": {"dtype": "F32", "data_offsets": [0, 4]}})", "abcd"),
                "shape");
  ExpectCorrupt(RawSafetensors(R"({"a": {"dtype": "F32", "shape": [1]}})", "abcd"), "data_offsets");
  for (const char* offsets : {"[0]", "[0, 4, 8]", "[-4, 0]", "[0, 4.5]", "[\"0\", 4]", "{}"}) {
    ExpectCorrupt(
        RawSafetensors(std::string(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": )") +
                           offsets + "}}",
                       "abcd"),
        "data_offsets");
  }
  for (const char* shape : {"[-1]", "[1.5]", "[\"4\"]", "[null]"}) {
    ExpectCorrupt(RawSafetensors(std::string(R"({"a": {"dtype": "F32", "shape": )") + shape +
                                     R"(, "data_offsets": [0, 4]}})",
                                 "abcd"),
                  "shape");
  }
}

TEST(SafetensorsTest, OffsetsOutsideTheFileOrBackwards) {
  ExpectCorrupt(RawSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                               std::string(4, '\0')),
                "outside");
  ExpectCorrupt(RawSafetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                               std::string(8, '\0')),
                "data_offsets");
  ExpectCorrupt(
      RawSafetensors(
          R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}})",
          std::string(8, '\0')),
      "outside");
}

TEST(SafetensorsTest, SizeDisagreesWithShapeAndDType) {
  ExpectCorrupt(RawSafetensors(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})",
                               std::string(24, '\0')),
                "do not match");
  ExpectCorrupt(RawSafetensors(R"({"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,4]}})",
                               std::string(8, '\0')),
                "do not match");
}

TEST(SafetensorsTest, ShapeOverflow) {
  // 2^32 * 2^32 overflows 64 bits.
  ExpectCorrupt(RawSafetensors(
                    R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                    std::string(4, '\0')),
                "overflow");
  // Elements fit in 64 bits but bytes do not (2^62 * 4).
  ExpectCorrupt(
      RawSafetensors(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})",
                     ""),
      "do not match");
  // A dimension above INT64_MAX.
  ExpectCorrupt(
      RawSafetensors(R"({"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}})",
                     ""),
      "too large");
  // A zero dimension makes the product 0 whatever follows: no overflow to report.
  ASSERT_OK(Parse(RawSafetensors(
      R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", "")));
}

}  // namespace
}  // namespace tokenfab
