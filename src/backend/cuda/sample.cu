#include <cfloat>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/sample.cuh"
#include "base/random.h"

namespace tokenfab::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

// Floats mapped to unsigned keys of the same order, so thresholds can be found bit by bit.
__device__ __forceinline__ uint32_t OrderedKey(float f) {
  const uint32_t bits = __float_as_uint(f);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

template <typename T, typename Op>
__device__ T BlockReduce(T v, T* scratch, Op op) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, o));
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[lane];  // kWarps == 32
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Running (max, sum of exp(x - max), first index of the max) of a set of logits.
struct MaxSumArg {
  float m;
  float s;
  int idx;
};

__device__ __forceinline__ MaxSumArg Combine(MaxSumArg a, MaxSumArg b) {
  const float m = fmaxf(a.m, b.m);
  MaxSumArg out;
  out.m = m;
  out.s = a.s * __expf(a.m - m) + b.s * __expf(b.m - m);
  out.idx = a.m > b.m ? a.idx : (b.m > a.m ? b.idx : min(a.idx, b.idx));
  return out;
}

__device__ MaxSumArg BlockMaxSumArg(MaxSumArg v, float* sm, float* ss, int* si) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSumArg other{__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o),
                    __shfl_xor_sync(kFullMask, v.idx, o)};
    v = Combine(v, other);
  }
  __syncthreads();
  if (lane == 0) {
    sm[warp] = v.m;
    ss[warp] = v.s;
    si[warp] = v.idx;
  }
  __syncthreads();
  v = MaxSumArg{sm[lane], ss[lane], si[lane]};  // kWarps == 32
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    MaxSumArg other{__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o),
                    __shfl_xor_sync(kFullMask, v.idx, o)};
    v = Combine(v, other);
  }
  return v;
}
struct Sum {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};

__global__ void __launch_bounds__(kThreads) SampleKernel(SampleParams p) {
  WaitForPriorGrids();
  __shared__ double scratch_d[kWarps];
  __shared__ float scratch_f[kWarps];
  __shared__ float scratch_f2[kWarps];
  __shared__ int scratch_i[kWarps];
  __shared__ double prefix[kThreads];
  const int row = blockIdx.x, tid = threadIdx.x, v = p.vocab;
  const float* x = p.logits + static_cast<int64_t>(row) * v;
  const DeviceSamplingParams sp = p.params[row];

  // One pass: max, the sum of exponentials relative to it (online), and the first argmax.
  MaxSumArg run{-FLT_MAX, 0.0f, v};
  for (int i = tid; i < v; i += kThreads) {
    const float xi = x[i];
    if (xi > run.m) {
      run.s = run.s * __expf(run.m - xi) + 1.0f;
      run.m = xi;
      run.idx = i;
    } else {
      run.s += __expf(xi - run.m);
    }
  }
  const MaxSumArg all = BlockMaxSumArg(run, scratch_f, scratch_f2, scratch_i);
  const float m = all.m;
  const double lse = m + log(static_cast<double>(all.s));

  int token;
  if (sp.temperature == 0.0f || sp.top_k == 1) {
    token = all.idx;
  } else {
    const float inv_t = 1.0f / sp.temperature;
    const float z_max = m * inv_t;
    uint32_t floor_key = 0;  // candidates: OrderedKey(z) >= floor_key
    if (sp.top_k > 0 && sp.top_k < v) {  // largest key with at least k values at or above it
      uint32_t key = 0;
      for (int bit = 31; bit >= 0; --bit) {
        const uint32_t trial = key | (1u << bit);
        int count = 0;
        for (int i = tid; i < v; i += kThreads) count += OrderedKey(x[i] * inv_t) >= trial;
        count = BlockReduce(count, scratch_i, Sum());
        if (count >= sp.top_k) key = trial;
      }
      floor_key = key;
    }
    if (sp.top_p < 1.0f) {  // largest key whose candidates at or above it hold top_p of the mass
      double mass = 0.0;
      for (int i = tid; i < v; i += kThreads) {
        const float z = x[i] * inv_t;
        if (OrderedKey(z) >= floor_key) mass += __expf(z - z_max);
      }
      mass = BlockReduce(mass, scratch_d, Sum());
      uint32_t key = 0;
      for (int bit = 31; bit >= 0; --bit) {
        const uint32_t trial = key | (1u << bit);
        double held = 0.0;
        for (int i = tid; i < v; i += kThreads) {
          const float z = x[i] * inv_t;
          const uint32_t k = OrderedKey(z);
          if (k >= trial && k >= floor_key) held += __expf(z - z_max);
        }
        held = BlockReduce(held, scratch_d, Sum());
        if (held >= sp.top_p * mass) key = trial;
      }
      floor_key = max(floor_key, key);
    }
    if (sp.min_p > 0.0f) floor_key = max(floor_key, OrderedKey(z_max + logf(sp.min_p)));
    // Draw in token-id order: each thread owns a contiguous chunk.
    const int chunk = (v + kThreads - 1) / kThreads;
    const int begin = min(v, tid * chunk), end = min(v, begin + chunk);
    double mine = 0.0;
    int last_kept = -1;
    for (int i = begin; i < end; ++i) {
      const float z = x[i] * inv_t;
      if (OrderedKey(z) >= floor_key) {
        mine += exp(static_cast<double>(z) - z_max);
        last_kept = i;
      }
    }
    prefix[tid] = mine;
    __syncthreads();
    if (tid == 0) {  // exclusive scan in thread order: deterministic
      double running = 0.0;
      for (int t = 0; t < kThreads; ++t) {
        const double c = prefix[t];
        prefix[t] = running;
        running += c;
      }
      scratch_d[0] = running;
    }
    __syncthreads();
    const double total = scratch_d[0];
    const double target = UniformDouble(sp.seed, 0, sp.step) * total;
    int found = -1;
    if (target >= prefix[tid] && target < prefix[tid] + mine) {
      double remaining = target - prefix[tid];
      for (int i = begin; i < end; ++i) {
        const float z = x[i] * inv_t;
        if (OrderedKey(z) < floor_key) continue;
        found = i;
        remaining -= exp(static_cast<double>(z) - z_max);
        if (remaining < 0.0) break;
      }
    }
    __syncthreads();
    const int hit = BlockReduce(found, scratch_i, [](int a, int b) { return a > b ? a : b; });
    const int fallback = BlockReduce(last_kept, scratch_i, [](int a, int b) { return a > b ? a : b; });
    token = hit >= 0 ? hit : fallback;  // rounding can leave target at the very end
  }
  if (tid == 0) {
    p.tokens[row] = token;
    p.logprobs[row] = static_cast<float>(x[token] - lse);
  }
}

}  // namespace

cudaError_t LaunchSample(const SampleParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  LaunchPdl(SampleKernel, p.rows, kThreads, 0, stream, p);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
