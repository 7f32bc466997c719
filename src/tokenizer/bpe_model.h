// BpeModel: the "BPE" model of a tokenizer.json. Turns one pre-tokenized piece into token ids
// by applying merges lowest rank first (ties: leftmost), exactly as Hugging Face `tokenizers`
// does; supports byte-level vocabularies (GPT-2 style, Llama 3, Qwen2/3) and SentencePiece-style
// ones with byte_fallback (<0xAB> tokens), unk_token with fuse_unk, ignore_merges,
// continuing_subword_prefix and end_of_word_suffix. Merges may be "a b" strings or [a, b] pairs.
//
// Results of recent pieces are cached (a bounded map, like `tokenizers`' cache), which makes
// natural text several times faster to encode.
// Thread-safety: Tokenize may be called from several threads at once (the cache is locked).
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace tokenfab {

class BpeModel {
 public:
  // `json` is the "model" object; `context` names it in errors.
  static Result<std::unique_ptr<BpeModel>> Create(const Json& json, const std::string& context);

  // Appends the ids of `piece` to `ids`.
  void Tokenize(std::string_view piece, std::vector<int32_t>* ids) const;

  // -1 if absent.
  int32_t TokenToId(std::string_view token) const;
  // nullptr if `id` is not in the vocabulary.
  const std::string* IdToToken(int32_t id) const;
  // Number of vocabulary entries (HF's get_vocab_size for the model).
  size_t vocab_size() const { return vocab_.size(); }
  // One past the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Merge {
    uint32_t rank;
    int32_t new_id;
  };
  void MergeWord(std::string_view piece, std::vector<int32_t>* ids) const;
  const Merge* FindMerge(int32_t a, int32_t b) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::vector<const std::string*> id_to_token_;  // by id; nullptr for holes
  std::unordered_map<uint64_t, Merge> merges_;
  std::string unk_token_;
  bool has_unk_ = false;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  int32_t byte_ids_[256];  // byte_fallback: id of "<0xAB>" or -1

  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kCacheMaxPieceBytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>
      cache_;
};

}  // namespace tokenfab
