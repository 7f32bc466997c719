// Post-processors of a tokenizer.json ("post_processor" field): what encode adds around the
// tokens when add_special_tokens is set (e.g. Llama's <|begin_of_text|>). Implemented:
// TemplateProcessing, ByteLevel (changes offsets only, so nothing here), RobertaProcessing,
// BertProcessing, Sequence. Only single sequences are encoded (no pairs).
// Thread-safety: immutable after creation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace tokenfab {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single sequence to `ids`.
  virtual void Process(std::vector<int32_t>* ids) const = 0;
};

Result<std::unique_ptr<PostProcessor>> CreatePostProcessor(const Json& json,
                                                           const std::string& context);

}  // namespace tokenfab
