// StreamingDetokenizer: turns generated token ids into text one token at a time, emitting only
// text that will not change: never half of a multi-byte UTF-8 character (a character split
// across byte tokens is held back until it is complete), and with the spacing that decoding
// the whole sequence gives (e.g. SentencePiece's leading-space strip applies once, at the
// start). The algorithm is Hugging Face `tokenizers`' DecodeStream, so the chunks are the same.
// Thread-safety: one stream per sequence; not shared between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace tokenfab {

class StreamingDetokenizer {
 public:
  StreamingDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // The text that token `id` completes, or nullopt if it completes nothing yet.
  Result<std::optional<std::string>> Step(int32_t id);
  // At the end of the sequence: whatever is still held back (an incomplete character shows as
  // U+FFFD, as in a full decode).
  Result<std::string> Finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // the tail of the sequence still needed for context
  std::string prefix_;        // decode of ids_[0, prefix_index_)
  size_t prefix_index_ = 0;
};

}  // namespace tokenfab
