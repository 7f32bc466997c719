// AddedVocabulary: the "added_tokens" of a tokenizer.json (special tokens such as
// <|im_start|>, and plain added tokens such as Qwen3's <think>). They are found in the input
// before anything else runs (leftmost-longest match), so they are never split by the
// pre-tokenizer or the model; tokens marked normalized=false are matched on the raw input,
// the others on the normalized text. single_word, lstrip and rstrip behave as in HF.
// Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace tokenfab {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // Registers `tokens` in order; `normalizer` (may be null) gives the form that normalized
  // tokens are matched in.
  Status Build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` into added-token pieces and normalized other pieces (the normalizer runs on
  // the other pieces only), as AddedVocabulary::extract_and_normalize does.
  // `split_special_tokens`: when true, special tokens are not matched (encoded as text).
  Status ExtractAndNormalize(std::string_view text, const Normalizer* normalizer,
                             bool split_special_tokens, std::vector<Piece>* pieces) const;

  const AddedToken* FindById(int32_t id) const;
  const AddedToken* FindByContent(std::string_view content) const;
  // The string decode uses for an added token: its normalized form if it has one.
  const std::string* DecodedForm(int32_t id) const;
  bool IsSpecial(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct TrieNode {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                 // index into tokens_
  };
  struct Trie {
    std::vector<TrieNode> nodes{TrieNode{}};
    bool first_byte[256] = {};
    void Insert(std::string_view s, int32_t token);
    // Longest token starting at `pos`, or -1; sets *len.
    int32_t LongestAt(std::string_view text, size_t pos, size_t* len) const;
  };
  void FindMatches(std::string_view text, const Trie& trie, bool split_special_tokens,
                   std::vector<std::pair<std::pair<size_t, size_t>, int32_t>>* out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unordered_map<int32_t, std::string> normalized_form_;
  Trie raw_trie_, normalized_trie_;
  bool has_raw_ = false, has_normalized_ = false;
};

}  // namespace tokenfab
