// The routed expert MLPs of a mixture-of-experts layer as grouped GEMMs on tensor cores, for
// steps with enough tokens per expert (prefill chunks, large decode batches) that streaming
// each expert's weights through CUDA-core dot products (moe.cu's GEMV kernels) is bound by
// arithmetic. The (token, slot) pairs are grouped by expert (moe.cu's GroupByExpertKernel) and
// cut into tiles of up to kExpertTileRows pairs of one expert; a block computes one tile
// against a strip of output rows, so each expert's weights are read once per tile.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

// Pairs per tile. 128-row tiles (8 warps) prefilled 2048 tokens 3% faster on an H200 but
// decoded 64 sequences 35% slower (their tiles are mostly padding).
constexpr int kExpertTileRows = 64;

struct ExpertMmaParams {
  const __nv_bfloat16* x;        // [T, H]: the tokens' input rows
  const int32_t* pairs;          // [P]: token * K + slot, grouped by expert
  const int32_t* tile_expert;    // [max_tiles]: the expert of each tile
  const int32_t* tile_begin;     // [max_tiles]: its first index into pairs
  const int32_t* tile_end;       // [max_tiles]: one past its last (<= begin + kExpertTileRows)
  const int32_t* num_tiles;      // how many tiles there are (device scalar)
  const __nv_bfloat16* gate_up;  // [E, 2I, H]
  const __nv_bfloat16* down;     // [E, H, I]
  __nv_bfloat16* act;            // [P, I]: silu(gate) * up of each pair, in pairs order
  float* contrib;                // [T * K, H]: each pair's expert output, unweighted
  int top_k;
  int hidden;
  int inter;
};

// Whether the shapes fit the tensor-core kernels: H and I multiples of 8 (16-byte rows) and
// 16-byte aligned operands.
bool ExpertMmaSupports(const ExpertMmaParams& p);

// act = silu(x W_gate^T) * (x W_up^T) per pair (gate and up rounded to bf16 first, as the dense
// path's projections are), grid (max_tiles, I / 64).
cudaError_t LaunchExpertGateUpMma(const ExpertMmaParams& p, int max_tiles, cudaStream_t stream);

// contrib = act W_down^T per pair, grid (max_tiles, H / 64).
cudaError_t LaunchExpertDownMma(const ExpertMmaParams& p, int max_tiles, cudaStream_t stream);

}  // namespace tokenfab::cuda
