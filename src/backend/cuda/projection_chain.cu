#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/mbarrier_impl.cuh"
#include "backend/cuda/projection_chain.cuh"

namespace tokenfab::cuda {
namespace {

constexpr int kConsumerWarps = 8;
constexpr int kConsumers = kConsumerWarps * 32;
constexpr int kThreads = kConsumers + 32;  // warp 0 produces (one lane), warps 1.. consume
constexpr int kSlotBytes = 16384;
constexpr int kSlots = 8;  // 128 KB in flight per SM: about 5 us of DRAM time on an H100
constexpr int kRowsPerChunk = 4;
constexpr int kMaxLocalRows = 2048;  // a block's accumulators: its share of a stage's rows
constexpr int kConsumerBarrier = 1;  // named barrier of the consumer warps (0 is __syncthreads)

struct SharedState {
  alignas(16) unsigned char ring[kSlots][kSlotBytes];
  alignas(16) __nv_bfloat16 x[kChainMaxK];
  float acc[kMaxLocalRows];
  float scratch[kConsumerWarps];
  uint64_t full[kSlots];
  uint64_t empty[kSlots];
};

// A block's share of a stage: outputs [o0, o0 + count), their weight rows (count of them, or
// gate and up rows when gated) cut into chunks of whole rows (up to kRowsPerChunk rows when a
// row fits a slot) or of row pieces (`pieces` per row when it does not).
struct StageSlice {
  int o0, count, ranges, rows_per_chunk, pieces, piece, chunks;
};

struct Chunk {
  const __nv_bfloat16* src;
  int local_row;  // first row's accumulator
  int rows;
  int elem0;  // first column
  int len;    // columns (the smem row stride)
};

__device__ __forceinline__ StageSlice SliceOf(const ChainStage& s, int block, int blocks) {
  StageSlice g;
  g.o0 = static_cast<int>(static_cast<int64_t>(s.n) * block / blocks);
  g.count = static_cast<int>(static_cast<int64_t>(s.n) * (block + 1) / blocks) - g.o0;
  g.ranges = s.output == ChainOutput::kGatedBf16 ? 2 : 1;
  const int row_bytes = s.k * 2;
  if (row_bytes <= kSlotBytes) {
    g.pieces = 1;
    g.piece = s.k;
    g.rows_per_chunk = min(kRowsPerChunk, kSlotBytes / row_bytes);
    g.chunks = g.ranges * ((g.count + g.rows_per_chunk - 1) / g.rows_per_chunk);
  } else {
    const int pieces = (row_bytes + kSlotBytes - 1) / kSlotBytes;
    g.piece = ((s.k + pieces - 1) / pieces + 7) / 8 * 8;
    g.pieces = (s.k + g.piece - 1) / g.piece;
    g.rows_per_chunk = 1;
    g.chunks = g.ranges * g.count * g.pieces;
  }
  return g;
}

__device__ __forceinline__ Chunk ChunkOf(const ChainStage& s, const StageSlice& g, int j) {
  Chunk c;
  int range, row;
  if (g.pieces == 1) {
    const int per_range = (g.count + g.rows_per_chunk - 1) / g.rows_per_chunk;
    range = j / per_range;
    row = (j % per_range) * g.rows_per_chunk;
    c.rows = min(g.rows_per_chunk, g.count - row);
    c.elem0 = 0;
    c.len = s.k;
  } else {
    const int local = j / g.pieces;
    range = local / g.count;
    row = local % g.count;
    c.rows = 1;
    c.elem0 = (j % g.pieces) * g.piece;
    c.len = min(g.piece, s.k - c.elem0);
  }
  c.local_row = range * g.count + row;
  const int64_t global_row = static_cast<int64_t>(range) * s.n + g.o0 + row;
  c.src = s.w + global_row * s.k + c.elem0;
  return c;
}

__device__ __forceinline__ void ConsumerSync() {
  asm volatile("bar.sync %0, %1;\n" ::"n"(kConsumerBarrier), "n"(kConsumers) : "memory");
}

__device__ __forceinline__ int LoadAcquire(const int* p) {
  int v;
  asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Sum over the consumer warps; every consumer thread gets it.
__device__ __forceinline__ float ConsumerSum(float v, float* scratch, int ct) {
  v = WarpSum(v);
  if ((ct & 31) == 0) scratch[ct >> 5] = v;
  ConsumerSync();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kConsumerWarps; ++w) total += scratch[w];
  ConsumerSync();  // scratch is reused by the next stage
  return total;
}

// The stage's input row into shared memory as bf16: x as is, or the normalised residual
// (RmsNormKernel's formula and rounding). Other blocks wrote it during this kernel, so the
// reads bypass L1 (__ldcg).
__device__ void StageInput(const ChainStage& s, SharedState& sh, int ct) {
  const int vecs = s.k / 8;
  Bf16x8* x_s = reinterpret_cast<Bf16x8*>(sh.x);
  if (s.norm_weight == nullptr) {
    const int4* x = static_cast<const int4*>(s.x);
    for (int v = ct; v < vecs; v += kConsumers) {
      const int4 raw = __ldcg(x + v);
      memcpy(&x_s[v], &raw, sizeof(raw));
    }
    return;
  }
  const float4* x = static_cast<const float4*>(s.x);
  float sum_sq = 0.0f;
  for (int v = ct; v < vecs; v += kConsumers) {
    const float4 a = __ldcg(x + 2 * v), b = __ldcg(x + 2 * v + 1);
    sum_sq += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
    sum_sq += b.x * b.x + b.y * b.y + b.z * b.z + b.w * b.w;
  }
  const float inv_rms = rsqrtf(ConsumerSum(sum_sq, sh.scratch, ct) / s.k + s.eps);
  for (int v = ct; v < vecs; v += kConsumers) {
    const float4 a = __ldcg(x + 2 * v), b = __ldcg(x + 2 * v + 1);
    const float e[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    float w[8], y[8];
    Load8(s.norm_weight + 8 * v, w);
#pragma unroll
    for (int j = 0; j < 8; ++j) y[j] = w[j] * (e[j] * inv_rms);
    x_s[v] = Pack(y);
  }
}

// One warp's dot products of a chunk's rows (in a ring slot) with the staged input.
__device__ __forceinline__ void ConsumeChunk(const Chunk& c, const unsigned char* slot,
                                             SharedState& sh, int lane) {
  const Bf16x8* w = reinterpret_cast<const Bf16x8*>(slot);
  const Bf16x8* x = reinterpret_cast<const Bf16x8*>(sh.x) + c.elem0 / 8;
  const int vecs = c.len / 8;
  float acc[kRowsPerChunk] = {};
  for (int v = lane; v < vecs; v += 32) {
    float xf[8];
    Unpack(x[v], xf);
#pragma unroll
    for (int r = 0; r < kRowsPerChunk; ++r) {
      if (r < c.rows) {
        float wf[8];
        Unpack(w[r * vecs + v], wf);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[r] += wf[j] * xf[j];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerChunk; ++r) {
    if (r < c.rows) {  // uniform across the warp
      const float sum = WarpSum(acc[r]);
      if (lane == 0) atomicAdd(&sh.acc[c.local_row + r], sum);
    }
  }
}

// The block's outputs of a stage from its accumulators (one writer per element).
__device__ void StageOutput(const ChainStage& s, const StageSlice& g, const SharedState& sh,
                            int ct) {
  for (int i = ct; i < g.count; i += kConsumers) {
    const int o = g.o0 + i;
    const float value = sh.acc[i] + (s.bias ? s.bias[o] : 0.0f);
    switch (s.output) {
      case ChainOutput::kStoreBf16:
        static_cast<__nv_bfloat16*>(s.out)[o] = __float2bfloat16(value);
        break;
      case ChainOutput::kStoreF32:
        static_cast<float*>(s.out)[o] = value;
        break;
      case ChainOutput::kAddF32: {
        float* out = static_cast<float*>(s.out) + o;
        *out = __ldcg(out) + value;
        break;
      }
      case ChainOutput::kGatedBf16: {
        // As GemvKernel's gated epilogue: both projections rounded to bf16 first.
        const float up = sh.acc[g.count + i] + (s.bias ? s.bias[s.n + o] : 0.0f);
        const float gate = RoundBf16(value), u = RoundBf16(up);
        static_cast<__nv_bfloat16*>(s.out)[o] = __float2bfloat16(SiluMul(gate, u));
        break;
      }
    }
  }
}

// The producer: every chunk of every stage in order, each into the next ring slot as soon as
// its consumer has released it. Weights are constant during a forward (ops.h), so it starts
// before the kernel before this one has finished.
__device__ void Produce(const ChainParams& p, SharedState& sh) {
  const uint64_t policy = L2EvictFirstPolicy();
  int n = 0;  // chunks issued
  for (int s = 0; s < p.num_stages; ++s) {
    const ChainStage& st = p.stages[s];
    const StageSlice g = SliceOf(st, blockIdx.x, gridDim.x);
    for (int j = 0; j < g.chunks; ++j, ++n) {
      const int slot = n % kSlots;
      if (n >= kSlots) MbarrierWait(&sh.empty[slot], ((n / kSlots) - 1) & 1);
      const Chunk c = ChunkOf(st, g, j);
      const uint32_t bytes = static_cast<uint32_t>(c.rows) * c.len * 2;
      MbarrierArriveExpectTx(&sh.full[slot], bytes);
      // Whole rows are contiguous in w, so a chunk is always one copy.
      BulkCopyToShared(sh.ring[slot], c.src, bytes, &sh.full[slot], policy);
    }
  }
}

__global__ void __launch_bounds__(kThreads, 1) ProjectionChainKernel(ChainParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  SharedState& sh = *reinterpret_cast<SharedState*>(smem_raw);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kSlots; ++i) {
      MbarrierInit(&sh.full[i], 1);
      MbarrierInit(&sh.empty[i], 1);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warp == 0) {
    if (lane == 0) Produce(p, sh);
    return;
  }
  const int ct = threadIdx.x - 32, cw = warp - 1;
  const int blocks = gridDim.x;
  int n = 0;  // chunks consumed by the block, all stages
  for (int s = 0; s < p.num_stages; ++s) {
    const ChainStage& st = p.stages[s];
    const StageSlice g = SliceOf(st, blockIdx.x, blocks);
    if (s == 0) {
      WaitForPriorGrids();
    } else if (ct == 0) {
      // Every block's outputs of the stage before are in (they may be this stage's input).
      while (LoadAcquire(&p.counters[s - 1]) < blocks) {
      }
    }
    ConsumerSync();
    StageInput(st, sh, ct);
    for (int i = ct; i < g.ranges * g.count; i += kConsumers) sh.acc[i] = 0.0f;
    ConsumerSync();
    for (int j = (cw - n % kConsumerWarps + kConsumerWarps) % kConsumerWarps; j < g.chunks;
         j += kConsumerWarps) {
      const int idx = n + j, slot = idx % kSlots;
      MbarrierWait(&sh.full[slot], (idx / kSlots) & 1);
      ConsumeChunk(ChunkOf(st, g, j), sh.ring[slot], sh, lane);
      __syncwarp();
      if (lane == 0) MbarrierArrive(&sh.empty[slot]);
    }
    n += g.chunks;
    ConsumerSync();
    StageOutput(st, g, sh, ct);
    ConsumerSync();
    if (ct == 0 && s + 1 < p.num_stages) {
      __threadfence();
      atomicAdd(&p.counters[s], 1);
    }
  }
  if (ct == 0) {
    // Every block is past all of its waits once the last one arrives here: zero the counters
    // for the next launch (which reads them only after this grid has finished).
    __threadfence();
    if (atomicAdd(&p.counters[kChainMaxStages], 1) == blocks - 1) {
      for (int i = 0; i <= kChainMaxStages; ++i) p.counters[i] = 0;
      __threadfence();
    }
  }
}

}  // namespace

bool ProjectionChainSupports(const ChainParams& p, int num_sms) {
  if (p.num_stages < 1 || p.num_stages > kChainMaxStages || p.counters == nullptr || num_sms < 1) {
    return false;
  }
  for (int s = 0; s < p.num_stages; ++s) {
    const ChainStage& st = p.stages[s];
    if (st.k <= 0 || st.k % 8 != 0 || st.k > kChainMaxK || st.n <= 0) return false;
    if (!Aligned16(st.x) || !Aligned16(st.w) || st.out == nullptr || st.out == st.x) return false;
    if (st.norm_weight != nullptr && !Aligned16(st.norm_weight)) return false;
    const int64_t rows = (st.output == ChainOutput::kGatedBf16 ? 2 : 1) *
                         ((static_cast<int64_t>(st.n) + num_sms - 1) / num_sms);
    if (rows > kMaxLocalRows) return false;
  }
  return true;
}

cudaError_t LaunchProjectionChain(const ChainParams& p, int num_sms, cudaStream_t stream) {
  if (!ProjectionChainSupports(p, num_sms)) return cudaErrorInvalidValue;
  constexpr size_t smem = sizeof(SharedState);
  static const cudaError_t configured = cudaFuncSetAttribute(
      ProjectionChainKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (configured != cudaSuccess) return configured;
  LaunchPdl(ProjectionChainKernel, num_sms, kThreads, smem, stream, p);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
