// Decoders of a tokenizer.json ("decoder" field): turn the token strings of a sequence back
// into text. Implemented: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder,
// Sequence. Each works on the whole list of token strings (HF's decode_chain), because
// some (ByteLevel, ByteFallback) must see neighbouring tokens to rebuild multi-byte characters.
// Thread-safety: immutable after creation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace tokenfab {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Status DecodeChain(std::vector<std::string>* tokens) const = 0;
};

Result<std::unique_ptr<Decoder>> CreateDecoder(const Json& json, const std::string& context);

}  // namespace tokenfab
