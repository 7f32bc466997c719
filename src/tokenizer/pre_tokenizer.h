// Pre-tokenizers of a tokenizer.json ("pre_tokenizer" field): split normalized text into the
// pieces that the model tokenizes independently. Implemented: Split (regex or string, all five
// delimiter behaviours, invert), ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit,
// Punctuation, Sequence. Others fail to load with an error naming the type.
// Thread-safety: immutable after creation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace tokenfab {

// A span of the input on its way through the pipeline. Pieces that are added tokens carry
// their id and are left alone by normalizers, pre-tokenizers and the model.
struct Piece {
  std::string text;
  int32_t token_id = -1;  // >= 0: an added token, already tokenized
  bool at_input_start = false;  // begins at byte 0 of the original input
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each non-token piece of `pieces` with its sub-pieces; empty pieces are dropped.
  virtual Status PreTokenize(std::vector<Piece>* pieces) const = 0;
};

Result<std::unique_ptr<PreTokenizer>> CreatePreTokenizer(const Json& json,
                                                         const std::string& context);

}  // namespace tokenfab
