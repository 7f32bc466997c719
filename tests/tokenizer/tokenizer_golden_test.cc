// Tokenization of the real Qwen3, Llama 3.1 and Llama 2 tokenizers against golden files made
// by Hugging Face `tokenizers` (tools/golden/make_tokenizer_goldens.py): ids with and without
// special tokens, decoded text (special tokens kept and skipped), DecodeStream chunks,
// invalid UTF-8 input.
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer_test_util.h"

namespace tokenfab {
namespace {

using testing::LoadAssetTokenizer;
using testing::LoadGolden;

std::vector<int32_t> Ids(const Json& j) { return j.get<std::vector<int32_t>>(); }

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += std::string{d[c >> 4], d[c & 15]};
  return out;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EncodeDecodeStreamMatchHuggingFace) {
  const auto tok = LoadAssetTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  const Json golden = LoadGolden("tokenize_" + GetParam() + ".json");
  ASSERT_TRUE(golden.contains("cases"));
  int failures = 0;
  for (const Json& c : golden["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> ids = Ids(c["ids"]);
    SCOPED_TRACE("text: " + text + " (hex " + Hex(text) + ")");
    ASSERT_OK_AND_ASSIGN(const auto got, tok->Encode(text));
    EXPECT_EQ(got, ids);
    ASSERT_OK_AND_ASSIGN(const auto with_special, tok->Encode(text, {.add_special_tokens = true}));
    EXPECT_EQ(with_special, c.contains("ids_with_special") ? Ids(c["ids_with_special"]) : ids);
    const std::string decoded = c.value("decoded", text);
    ASSERT_OK_AND_ASSIGN(const std::string got_decoded, tok->Decode(ids));
    EXPECT_EQ(got_decoded, decoded);
    ASSERT_OK_AND_ASSIGN(const std::string skipped, tok->Decode(ids, true));
    EXPECT_EQ(skipped, c.value("decoded_skip_special", decoded));
    StreamingDetokenizer stream(*tok, false);
    const Json& chunks = c["stream"];
    ASSERT_EQ(chunks.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(const auto chunk, stream.Step(ids[i]));
      if (chunks[i].is_null()) {
        EXPECT_FALSE(chunk.has_value()) << "step " << i << " gave '" << chunk.value_or("") << "'";
      } else {
        EXPECT_EQ(chunk.value_or("<none>"), chunks[i].get<std::string>()) << "step " << i;
      }
    }
    if (::testing::Test::HasFailure() && ++failures > 20) break;
  }
}

TEST_P(GoldenTest, InvalidUtf8IsReplacedLikeFromUtf8Lossy) {
  const auto tok = LoadAssetTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  const Json golden = LoadGolden("tokenize_" + GetParam() + ".json");
  ASSERT_FALSE(golden["invalid_utf8"].empty());
  for (const Json& c : golden["invalid_utf8"]) {
    const std::string hex = c["bytes_hex"].get<std::string>();
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    SCOPED_TRACE("bytes " + hex);
    ASSERT_OK_AND_ASSIGN(const auto ids, tok->Encode(bytes));
    EXPECT_EQ(ids, Ids(c["ids"]));
  }
}

TEST_P(GoldenTest, PartialUtf8TokensDecodeAndStreamLikeHuggingFace) {
  const auto tok = LoadAssetTokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  const Json golden = LoadGolden("tokenize_" + GetParam() + ".json");
  ASSERT_FALSE(golden["odd_byte_decodes"].empty());
  for (const Json& c : golden["odd_byte_decodes"]) {
    const std::vector<int32_t> ids = Ids(c["ids"]);
    SCOPED_TRACE(c.dump());
    ASSERT_OK_AND_ASSIGN(const std::string text, tok->Decode(ids));
    EXPECT_EQ(text, c["decoded"].get<std::string>());
    StreamingDetokenizer stream(*tok, false);
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(const auto chunk, stream.Step(ids[i]));
      if (c["stream"][i].is_null()) {
        EXPECT_FALSE(chunk.has_value());
      } else {
        EXPECT_EQ(chunk.value_or("<none>"), c["stream"][i].get<std::string>());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, GoldenTest, ::testing::Values("qwen3", "llama3_1", "llama2"));

}  // namespace
}  // namespace tokenfab
