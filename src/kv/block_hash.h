// Block hashes: the KV cache's universal key (DESIGN.md). Full blocks of `block_size` tokens
// are chained: hash(block i) = SipHash-128 under the deployment's secret key of
// (hash(block i-1) or "no parent", block i's token ids, model id, cache salt). Two sequences
// share a block hash only if they share model, salt and every token up to the block's end.
// Thread-safety: a BlockHasher is immutable; Hash may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "kv/siphash.h"

namespace tokenfab {

using BlockHash = Hash128;

// 32 lowercase hex digits (the reference byte order).
std::string BlockHashHex(const BlockHash& hash);

struct BlockHashOf {
  size_t operator()(const BlockHash& h) const { return static_cast<size_t>(h.lo ^ (h.hi * 31)); }
};

class BlockHasher {
 public:
  BlockHasher(const SipKey& key, std::string model_id) : key_(key), model_id_(std::move(model_id)) {}

  // A key from the system's random source (a fresh deployment secret).
  static SipKey RandomKey();
  // 32 hex digits to a key; InvalidArgument otherwise.
  static Result<SipKey> ParseKey(std::string_view hex);

  BlockHash Hash(const std::optional<BlockHash>& parent, std::span<const int32_t> tokens,
                 std::string_view cache_salt) const;

  // Extends `hashes` (the chain of the first hashes->size() full blocks of `tokens`) to every
  // full block of `tokens`.
  void ExtendChain(std::span<const int32_t> tokens, int32_t block_size, std::string_view cache_salt,
                   std::vector<BlockHash>* hashes) const;

  const std::string& model_id() const { return model_id_; }

 private:
  SipKey key_;
  std::string model_id_;
};

}  // namespace tokenfab
