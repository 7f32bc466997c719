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

// Long spans come back from the piece cache as they were encoded: texts of joined golden cases
// (each over PieceCache::kMinBytes), encoded a second time and after a special token (not at
// the input's start, a separate cache key: a Metaspace pre-tokenizer with prepend_scheme
// "first" prepends only there), against a second tokenizer that encodes each only once.
TEST_P(GoldenTest, LongSpansEncodeAlikeFromThePieceCache) {
  const auto cached = LoadAssetTokenizer(GetParam());
  const auto fresh = LoadAssetTokenizer(GetParam());
  ASSERT_NE(cached, nullptr);
  ASSERT_NE(fresh, nullptr);
  const std::string special = GetParam() == "qwen3"     ? "<|im_start|>"
                              : GetParam() == "llama2" ? "<s>"
                                                       : "<|begin_of_text|>";
  const Json golden = LoadGolden("tokenize_" + GetParam() + ".json");
  std::vector<std::string> texts(1);
  for (const Json& c : golden["cases"]) {
    const std::string text = c["text"].get<std::string>();
    if (text.find('<') != std::string::npos) continue;  // no added-token text inside
    texts.back() += text + "\n";
    if (texts.back().size() > 2 * PieceCache::kMinBytes) texts.emplace_back();
  }
  ASSERT_GT(texts.size(), 5u);
  for (const std::string& text : texts) {
    SCOPED_TRACE(text.substr(0, 80));
    // `fresh` meets each text once in each position, the span after the special token first.
    ASSERT_OK_AND_ASSIGN(const auto expected_after, fresh->Encode(special + text));
    ASSERT_OK_AND_ASSIGN(const auto expected, fresh->Encode(text));
    ASSERT_OK_AND_ASSIGN(const auto first, cached->Encode(text));
    ASSERT_OK_AND_ASSIGN(const auto again, cached->Encode(text));
    ASSERT_OK_AND_ASSIGN(const auto after_special, cached->Encode(special + text));
    EXPECT_EQ(first, expected);
    EXPECT_EQ(again, expected);
    EXPECT_EQ(after_special, expected_after);
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, GoldenTest, ::testing::Values("qwen3", "llama3_1", "llama2"));

}  // namespace
}  // namespace tokenfab
