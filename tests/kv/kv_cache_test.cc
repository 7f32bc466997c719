#include "kv/kv_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>

#include "backend/backend_registry.h"
#include "test_util.h"

namespace tokenfab {
namespace {

std::unique_ptr<Backend> Cpu() {
  RegisterBuiltinBackends();
  auto backend = CreateBackend("cpu", BackendOptions{0, 1});
  EXPECT_TRUE(backend.ok()) << backend.status().ToString();
  return std::move(backend).value();
}

KvCacheLayout Layout() {
  KvCacheLayout l;
  l.num_layers = 3;
  l.num_kv_heads = 2;
  l.head_dim = 24;
  l.block_size = 5;
  l.num_blocks = 7;
  l.dtype = DType::kF32;
  return l;
}

TEST(KvCacheLayoutTest, BytesPerBlockCountsKAndVOfEveryLayer) {
  KvCacheLayout l = Layout();
  EXPECT_EQ(l.BytesPerBlock(), 2u * 3 * 5 * 2 * 24 * 4);
  l.dtype = DType::kBF16;
  EXPECT_EQ(l.BytesPerBlock(), 2u * 3 * 5 * 2 * 24 * 2);
  // Llama-3.1-8B in bf16 with 16-token blocks: 32 layers x 8 heads x 128 -> 2 MiB per block.
  l = {32, 8, 128, 16, 1, DType::kBF16};
  EXPECT_EQ(l.BytesPerBlock(), 2u * 1024 * 1024);
}

TEST(KvCacheLayoutTest, ValidateRejectsDegenerateLayouts) {
  EXPECT_OK(Layout().Validate());
  auto with = [](auto edit) {
    KvCacheLayout l = Layout();
    edit(l);
    return l.Validate();
  };
  EXPECT_EQ(with([](KvCacheLayout& l) { l.num_layers = 0; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](KvCacheLayout& l) { l.num_kv_heads = -1; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](KvCacheLayout& l) { l.head_dim = 0; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](KvCacheLayout& l) { l.block_size = 0; }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](KvCacheLayout& l) { l.block_size = 1025; }).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](KvCacheLayout& l) { l.num_blocks = 0; }).code(), StatusCode::kInvalidArgument);
  EXPECT_OK(with([](KvCacheLayout& l) { l.block_size = 1; }));
  EXPECT_OK(with([](KvCacheLayout& l) { l.block_size = 1024; }));
}

TEST(KvCacheTest, OneKAndOneVTensorPerLayerThatTileTheBuffer) {
  auto backend = Cpu();
  const KvCacheLayout l = Layout();
  ASSERT_OK_AND_ASSIGN(auto cache, KvCache::Create(*backend, l));
  EXPECT_EQ(cache->bytes(), l.BytesPerBlock() * l.num_blocks);
  const KvCacheTensors& t = cache->tensors();
  EXPECT_EQ(t.block_size, 5);
  EXPECT_EQ(t.num_blocks, 7);
  ASSERT_EQ(t.k.size(), 3u);
  ASSERT_EQ(t.v.size(), 3u);
  // Every view has the documented shape, and together they cover the buffer without overlap.
  std::set<std::pair<uintptr_t, uintptr_t>> ranges;
  for (int layer = 0; layer < 3; ++layer) {
    for (const Tensor* x : {&t.k[layer], &t.v[layer]}) {
      EXPECT_EQ(x->dtype, DType::kF32);
      ASSERT_EQ(x->rank, 4);
      EXPECT_EQ(x->ShapeString(), "[7, 5, 2, 24]");
      const auto begin = reinterpret_cast<uintptr_t>(x->data);
      ranges.insert({begin, begin + x->bytes()});
    }
  }
  ASSERT_EQ(ranges.size(), 6u);
  uintptr_t expect = ranges.begin()->first;
  for (const auto& [begin, end] : ranges) {
    EXPECT_EQ(begin, expect) << "views leave a gap or overlap";
    expect = end;
  }
  EXPECT_EQ(expect - ranges.begin()->first, cache->bytes());
}

TEST(KvCacheTest, CreateRejectsABadLayout) {
  auto backend = Cpu();
  KvCacheLayout bad = Layout();
  bad.num_blocks = 0;
  EXPECT_EQ(KvCache::Create(*backend, bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tokenfab
