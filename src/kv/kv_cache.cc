#include "kv/kv_cache.h"

#include <string>

namespace tokenfab {

uint64_t KvCacheLayout::BytesPerBlock() const {
  return 2ull * num_layers * block_size * num_kv_heads * head_dim * DTypeSize(dtype);
}

Status KvCacheLayout::Validate() const {
  if (num_layers <= 0 || num_kv_heads <= 0 || head_dim <= 0) {
    return InvalidArgumentError("KV cache layout: layers, heads and head_dim must be positive");
  }
  if (block_size <= 0 || block_size > 1024) {
    return InvalidArgumentError("KV cache layout: block size must be in [1, 1024]");
  }
  if (num_blocks <= 0) return InvalidArgumentError("KV cache layout: no blocks");
  return Status::Ok();
}

Result<std::unique_ptr<KvCache>> KvCache::Create(Backend& backend, const KvCacheLayout& layout) {
  TF_RETURN_IF_ERROR(layout.Validate());
  std::unique_ptr<KvCache> cache(new KvCache);
  cache->layout_ = layout;
  const uint64_t per_layer_tensor = static_cast<uint64_t>(layout.num_blocks) * layout.block_size *
                                    layout.num_kv_heads * layout.head_dim *
                                    DTypeSize(layout.dtype);
  auto buffer = backend.Allocate(2 * per_layer_tensor * layout.num_layers);
  if (!buffer.ok()) {
    return ResourceExhaustedError("KV cache of " + std::to_string(layout.num_blocks) +
                                  " blocks does not fit: " + buffer.status().message());
  }
  cache->buffer_ = std::move(buffer).value();
  KvCacheTensors& t = cache->tensors_;
  t.block_size = layout.block_size;
  t.num_blocks = layout.num_blocks;
  char* base = static_cast<char*>(cache->buffer_.data());
  for (int l = 0; l < layout.num_layers; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      Tensor view(base + (2 * l + kv) * per_layer_tensor, layout.dtype,
                  {layout.num_blocks, layout.block_size, layout.num_kv_heads, layout.head_dim});
      (kv == 0 ? t.k : t.v).push_back(view);
    }
  }
  return cache;
}

}  // namespace tokenfab
