// Views of the paged KV cache, one K and one V tensor per layer, each
// [num_blocks, block_size, num_kv_heads, head_dim]. Block ids index the first dimension; the
// memory is owned by kv/KvCache.
#pragma once

#include <vector>

#include "backend/tensor.h"

namespace tokenfab {

struct KvCacheTensors {
  int block_size = 16;
  int num_blocks = 0;
  std::vector<Tensor> k;  // [num_layers]
  std::vector<Tensor> v;  // [num_layers]
};

}  // namespace tokenfab
