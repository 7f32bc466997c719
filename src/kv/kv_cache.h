// KvCache: the memory of the paged KV cache on one backend — for every layer a K and a V
// tensor of [num_blocks, block_size, num_kv_heads, head_dim] — sized from a block count or a
// byte budget. Which block belongs to whom is BlockPool's business, not this class's.
// Thread-safety: immutable after Create (the contents are written by the model's ops).
#pragma once

#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "backend/kv_cache_tensors.h"

namespace tokenfab {

struct KvCacheLayout {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 16;
  int num_blocks = 0;
  DType dtype = DType::kF32;

  uint64_t BytesPerBlock() const;  // all layers, K and V
  Status Validate() const;
};

class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> Create(Backend& backend, const KvCacheLayout& layout);

  const KvCacheLayout& layout() const { return layout_; }
  const KvCacheTensors& tensors() const { return tensors_; }
  uint64_t bytes() const { return buffer_.bytes(); }

 private:
  KvCache() = default;
  KvCacheLayout layout_;
  DeviceBuffer buffer_;
  KvCacheTensors tensors_;
};

}  // namespace tokenfab
