// The row buckets that share one timed cuBLASLt algorithm (cublaslt_gemm.h).
#include <gtest/gtest.h>

#include "backend/cuda/cublaslt_gemm.h"

namespace tokenfab {
namespace {

TEST(GemmRowBucketTest, PowersOfTwoAndOneAndAHalfTimesThemWithSteps32From64To1024) {
  const int64_t expected[][2] = {{1, 1},       {2, 2},       {3, 3},      {4, 4},     {5, 6},
                                 {6, 6},       {7, 8},       {9, 12},     {13, 16},   {17, 24},
                                 {64, 64},     {65, 96},     {97, 128},   {156, 160}, {193, 224},
                                 {302, 320},   {320, 320},   {321, 352},  {1024, 1024},
                                 {1025, 1536}, {2048, 2048}, {4096, 4096}, {4097, 6144}};
  for (const auto& [m, bucket] : expected) EXPECT_EQ(GemmRowBucket(m), bucket) << m;
}

}  // namespace
}  // namespace tokenfab
