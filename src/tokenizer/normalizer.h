// Normalizers of a tokenizer.json ("normalizer" field): text transforms applied to the parts of
// the input that are not added tokens, before pre-tokenization. Implemented: NFC, NFD, NFKC,
// NFKD, Lowercase, Strip, Replace, Prepend, Sequence. Others fail to load with an error that
// names the type.
// Thread-safety: immutable after creation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"
#include "tokenizer/regex.h"

namespace tokenfab {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Transforms `text` in place. `lead_removed` is set when the first character of the result
  // no longer comes from the first character of the input (something at the start was
  // deleted); the Metaspace pre-tokenizer's "first" scheme depends on it.
  virtual Status Normalize(std::string* text, bool* lead_removed) const = 0;
};

// {"String": s} (a literal) or {"Regex": r}: the pattern of Split and Replace.
Result<Regex> ParsePattern(const Json& json, const std::string& context);

// `json` is the "normalizer" value (not null); `context` names it in errors.
Result<std::unique_ptr<Normalizer>> CreateNormalizer(const Json& json, const std::string& context);

}  // namespace tokenfab
