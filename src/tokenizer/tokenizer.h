// Tokenizer: a Hugging Face tokenizer.json, loaded and run exactly as the `tokenizers` library
// runs it: added tokens are extracted first, the rest is normalized, pre-tokenized and
// BPE-encoded; decoding maps ids back through the decoder chain.
//
// Encode(text) equals `tokenizers`' encode(text, add_special_tokens=False).ids: special-token
// text in the input is recognised (it is not split), and nothing is added around it; with
// add_special_tokens the post-processor adds what the model expects (e.g. a BOS token).
// Input that is not valid UTF-8 is repaired first: every maximal ill-formed subsequence
// becomes U+FFFD, which is what a caller of `tokenizers` gets from bytes.decode("utf-8",
// errors="replace") (Rust's from_utf8_lossy); `tokenizers` itself only accepts valid strings.
//
// Long spans between added tokens are cached with their ids (PieceCache), so text a caller
// encodes again and again (a conversation's earlier turns) is pre-tokenized once.
//
// Thread-safety: after loading, every method is const and may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/piece_cache.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace tokenfab {

struct EncodeOptions {
  bool add_special_tokens = false;    // run the post-processor (e.g. prepend BOS)
  bool split_special_tokens = false;  // treat special-token text in the input as plain text
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json file or a directory holding one.
  static Result<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // The text of a tokenizer.json; `source` names it in errors.
  static Result<std::unique_ptr<Tokenizer>> FromJson(std::string_view json_text,
                                                     const std::string& source);

  Result<std::vector<int32_t>> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Ids not in the vocabulary are skipped, as in `tokenizers`.
  Result<std::string> Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // -1 if unknown (added tokens first, then the model's vocabulary).
  int32_t TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(int32_t id) const;
  // One past the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const { return vocab_size_; }
  // True for added tokens marked special (skipped by Decode(skip_special_tokens=true)).
  bool IsSpecialId(int32_t id) const;
  const AddedVocabulary& added_vocabulary() const { return added_; }

 private:
  Tokenizer() = default;
  // Pre-tokenizes `spans` (the added-token split's pieces) and appends their ids.
  Status EncodeSpans(std::vector<Piece>* spans, std::vector<int32_t>* ids) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  int32_t vocab_size_ = 0;
  static constexpr size_t kPieceCacheBytes = 32 << 20;
  mutable PieceCache piece_cache_{kPieceCacheBytes};
};

}  // namespace tokenfab
