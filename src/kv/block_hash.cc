#include "kv/block_hash.h"

#include <random>

namespace tokenfab {
namespace {

void AppendU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void AppendU64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

std::string BlockHashHex(const BlockHash& hash) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : hash.Bytes()) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

SipKey BlockHasher::RandomKey() {
  std::random_device entropy;
  SipKey key;
  for (uint8_t& b : key) b = static_cast<uint8_t>(entropy());
  return key;
}

Result<SipKey> BlockHasher::ParseKey(std::string_view hex) {
  if (hex.size() != 32) return InvalidArgumentError("a block hash key is 32 hex digits");
  SipKey key;
  for (size_t i = 0; i < 16; ++i) {
    int v = 0;
    for (char c : hex.substr(2 * i, 2)) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return InvalidArgumentError("a block hash key is 32 hex digits");
      v = v * 16 + d;
    }
    key[i] = static_cast<uint8_t>(v);
  }
  return key;
}

BlockHash BlockHasher::Hash(const std::optional<BlockHash>& parent,
                            std::span<const int32_t> tokens, std::string_view cache_salt) const {
  // An unambiguous encoding: a version tag, then length-prefixed fields.
  std::string msg = "tfkv1";
  msg.push_back(parent.has_value() ? 1 : 0);
  AppendU64(parent ? parent->lo : 0, &msg);
  AppendU64(parent ? parent->hi : 0, &msg);
  AppendU32(static_cast<uint32_t>(model_id_.size()), &msg);
  msg += model_id_;
  AppendU32(static_cast<uint32_t>(cache_salt.size()), &msg);
  msg += cache_salt;
  AppendU32(static_cast<uint32_t>(tokens.size()), &msg);
  for (int32_t t : tokens) AppendU32(static_cast<uint32_t>(t), &msg);
  return SipHash128(key_, msg.data(), msg.size());
}

void BlockHasher::ExtendChain(std::span<const int32_t> tokens, int32_t block_size,
                              std::string_view cache_salt, std::vector<BlockHash>* hashes) const {
  const size_t full_blocks = tokens.size() / static_cast<size_t>(block_size);
  while (hashes->size() < full_blocks) {
    const size_t i = hashes->size();
    std::optional<BlockHash> parent;
    if (i > 0) parent = (*hashes)[i - 1];
    hashes->push_back(Hash(parent, tokens.subspan(i * block_size, block_size), cache_salt));
  }
}

}  // namespace tokenfab
