// Launcher of the projection chain: a decode step's consecutive single-row projections (a
// block's output projection, the next block's normalised input projection, ...) as one
// persistent kernel that streams their weights without a break between them.
//
// Why: at batch 1 every projection is a GEMV bound by reading its weights, and each kernel
// boundary costs its ramp (the first DRAM round trip after the wait) and its drain (the SMs
// that finish early idle until the last one does): about 3 us a GEMV on the H100, 129 of them a
// Llama-3.1-8B step. Here one block per SM owns a fixed slice of every stage's weight rows and
// a producer warp copies them (cp.async.bulk) through a ring in shared memory, running ahead
// across stage boundaries: the next stage's weights arrive while the block waits for the stage
// before it to finish on every SM (a counter in global memory), so DRAM stays busy through the
// boundary. The RMSNorm of a stage's input is recomputed by every block from the f32 residual
// (16 KB from L2) instead of running as a kernel of its own.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tokenfab::cuda {

constexpr int kChainMaxStages = 4;
constexpr int kChainMaxK = 16384;  // a stage's input row, staged in shared memory as bf16

enum class ChainOutput : uint8_t {
  kStoreBf16,  // out bf16 [n]
  kStoreF32,   // out f32 [n]
  kAddF32,     // out f32 [n] += result (the residual stream)
  kGatedBf16,  // w has 2n rows (gate, then up); out bf16 [n] = silu(gate) * up, as GemvKernel
};

struct ChainStage {
  // The input row: bf16 [k], or with norm_weight the f32 residual [k], normalised as
  // RmsNormKernel would store it (bf16) before the product.
  const void* x = nullptr;
  const float* norm_weight = nullptr;
  float eps = 0.0f;
  const __nv_bfloat16* w = nullptr;  // [n, k], or [2n, k] when gated
  const float* bias = nullptr;       // [n] ([2n] gated) or null
  void* out = nullptr;
  int n = 0;
  int k = 0;  // multiple of 8, <= kChainMaxK
  ChainOutput output = ChainOutput::kStoreBf16;
};

struct ChainParams {
  ChainStage stages[kChainMaxStages];
  int num_stages = 0;
  // kChainMaxStages + 1 zeroed ints: a count of finished blocks per stage and a final ticket
  // whose last holder zeroes them all again for the next launch.
  int* counters = nullptr;
};

// True if every stage fits the kernel (k % 8 == 0 and <= kChainMaxK, 16-byte aligned rows,
// each block's share of outputs within its accumulators) and the stages do not overlap in a
// way the kernel cannot order (a stage's output must not be its own input).
bool ProjectionChainSupports(const ChainParams& p, int num_sms);

// One block per SM (`num_sms`); p.counters as above.
cudaError_t LaunchProjectionChain(const ChainParams& p, int num_sms, cudaStream_t stream);

}  // namespace tokenfab::cuda
