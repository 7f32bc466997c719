#include <cfloat>

#include "backend/cuda/common_impl.cuh"
#include "backend/cuda/sample.cuh"
#include "base/random.h"

namespace tokenfab::cuda {
namespace {

// One block per row. A row is read several times (max, the radix passes, the draw); 1024
// threads keep enough loads in flight on the one multiprocessor a row gets.
constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

// The top-k and top-p thresholds are found by a radix select over 32-bit keys, 8 bits a pass:
// 4 passes over the row, against 32 for a bit-by-bit search, with a histogram of 256 bins that
// stays small in shared memory and that one warp scans with 8 bins a lane.
constexpr int kDigitBits = 8;
constexpr int kBins = 1 << kDigitBits;
constexpr int kPasses = 32 / kDigitBits;
static_assert(kBins == 8 * 32, "the digit scan gives each lane of one warp 8 bins");

// Probability mass in the top-p histogram is unsigned fixed point: w = exp(z - z_max) in
// (0, 1] counts as floor(w * 2^40). Integer atomics give the same sums in any order, so a seeded
// request picks the same threshold, and token, every run; float atomics would not. A row of
// 128256 weights sums to below 2^57: no overflow. Weights below 2^-40 count as 0, which cannot
// move the threshold by more than a set of tokens holding 2^-23 of the mass.
constexpr float kMassScale = 1099511627776.0f;  // 2^40
using Mass = unsigned long long;                // the 64-bit type of CUDA's shuffles

// Each bin has 32 copies, one per lane (a bank each): logits crowd into a few top digits (a digit
// covers two binades), and atomics of one warp on one address serialise. The copies are 32-bit
// because shared memory has no 64-bit atomic add (it compiles to a compare-and-swap loop, which
// 32 warps on the same few bins keep failing): a mass adds its low word to the lane's copy and
// its high word, with the carry out of the low word, to the bin's one high word. That is rare
// (weights of 2^-8 and more, or a low word wrapping) and the sums stay exact in any order.
struct RadixScratch {
  uint32_t low[kBins * 32];  // [bin][lane]: counts (top-k), or low words of masses (top-p)
  uint32_t high[kBins];      // [bin]: high words of masses
  uint32_t count[kBins];     // [bin]: top-p, first pass: elements (a warp's increments of one
                             // address are merged in hardware)
  Mass bins[kBins];          // the copies merged
  uint32_t prefix;           // the digits chosen so far, from the top
  uint32_t gathered;         // candidates gathered in the second pass
  bool gather;               // whether the second pass gathers them
};

// The passes after the first two read only the elements whose top digit matched: when the first
// pass counts few enough, the second gathers their scaled logits into shared memory (dynamic,
// 64 KB), and the last two read those instead of the row. The order of gathering varies from
// run to run; the integer histograms built from it do not.
constexpr int kGatherCapacity = 16384;
constexpr size_t kGatherBytes = kGatherCapacity * sizeof(float);

// Floats mapped to unsigned keys of the same order, so thresholds can be found digit by digit.
__device__ __forceinline__ uint32_t OrderedKey(float f) {
  const uint32_t bits = __float_as_uint(f);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

// Calls f(i, x[i]) for every i < v. Each thread visits its indices in increasing order; most of
// the row goes through 16-byte loads (the row start is realigned first, as rows of an odd
// vocabulary are not).
template <typename F>
__device__ __forceinline__ void ForEachLogit(const float* x, int v, F&& f) {
  const int tid = threadIdx.x;
  const int head = min(v, static_cast<int>((16 - (reinterpret_cast<uintptr_t>(x) & 15)) & 15) / 4);
  if (tid < head) f(tid, x[tid]);
  const int quads = (v - head) / 4;
  const float4* x4 = reinterpret_cast<const float4*>(x + head);
  for (int j = tid; j < quads; j += kThreads) {
    const float4 q = x4[j];
    const int i = head + 4 * j;
    f(i, q.x);
    f(i + 1, q.y);
    f(i + 2, q.z);
    f(i + 3, q.w);
  }
  for (int i = head + 4 * quads + tid; i < v; i += kThreads) f(i, x[i]);
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

// The largest key K such that the elements with key >= max(K, floor_key) weigh at least `need`
// in total: each weighs 1 (top-k, kMass false; `weight` unused) or weight(z), its fixed-point
// mass (top-p). With fraction > 0, need is instead max(1, ceil(fraction * total weight)), the
// total known after the first pass. K is always the key of an element at or above floor_key
// with nonzero weight, and the weight of the elements strictly above K is below need: the
// bit-by-bit definition, found 8 bits at a time. Per pass, the histogram of the current digit
// over the elements whose higher digits equal the prefix found so far; warp 0 then scans the
// bins from 255 down, starting from the weight of the elements above the prefix, for the digit
// where the running weight reaches need. The second pass may gather the elements it matches
// into `gathered` for the last two (kGatherCapacity above). Every thread of the block calls it
// and gets K; the histograms are zero on entry and on return.
template <bool kMass, typename Weight>
__device__ uint32_t RadixSelect(const float* x, int v, float inv_t, uint32_t floor_key,
                                Mass need, float fraction, Weight weight, RadixScratch& s,
                                float* gathered) {
  const int tid = threadIdx.x, lane = tid & 31;
  uint32_t* const mine = s.low + lane;
  uint32_t prefix = 0;
  bool gather = false;
  Mass above = 0;  // warp 0: weight of the elements above the prefix
#pragma unroll 1
  for (int pass = 0; pass < kPasses; ++pass) {
    const int shift = 32 - kDigitBits * (pass + 1);
    const uint32_t high = pass == 0 ? 0u : ~0u << (shift + kDigitBits);  // digits chosen
    const bool gathering = gather && pass == 1;
    const auto visit = [&](float z) {
      const uint32_t key = OrderedKey(z);
      const bool match = key >= floor_key && ((key ^ prefix) & high) == 0;
      if (gathering) {  // one shared-counter atomic per warp
        const uint32_t active = __activemask();
        const uint32_t takers = __ballot_sync(active, match);
        if (match) {
          const int leader = __ffs(takers) - 1;
          uint32_t base = 0;
          if (lane == leader) base = atomicAdd(&s.gathered, static_cast<uint32_t>(__popc(takers)));
          base = __shfl_sync(takers, base, leader);
          const uint32_t slot = base + __popc(takers & ((1u << lane) - 1));
          if (slot < kGatherCapacity) gathered[slot] = z;  // always: the first pass counted
        }
      }
      if (match) {
        const uint32_t bin = (key >> shift) & (kBins - 1);
        if constexpr (kMass) {
          if (pass == 0) atomicAdd(&s.count[bin], 1u);
          const Mass w = weight(z);
          const uint32_t lo = static_cast<uint32_t>(w);
          uint32_t hi = static_cast<uint32_t>(w >> 32);
          if (lo != 0) {
            const uint32_t old = atomicAdd(&mine[bin * 32], lo);
            hi += old + lo < old ? 1u : 0u;  // the low word wrapped
          }
          if (hi != 0) atomicAdd(&s.high[bin], hi);
        } else {
          atomicAdd(&mine[bin * 32], 1u);
        }
      }
    };
    if (gather && pass >= 2) {
      const int n = static_cast<int>(s.gathered);
      for (int i = tid; i < n; i += kThreads) visit(gathered[i]);
    } else {
      ForEachLogit(x, v, [&](int, float xi) { visit(xi * inv_t); });
    }
    __syncthreads();
    // Merge the copies and zero them; the rotation keeps the lanes on distinct banks.
    if (tid < kBins) {
      Mass sum = 0;
#pragma unroll
      for (int c = 0; c < 32; ++c) {
        uint32_t& cell = s.low[tid * 32 + ((c + tid) & 31)];
        sum += cell;
        cell = 0;
      }
      if constexpr (kMass) {
        sum += static_cast<Mass>(s.high[tid]) << 32;
        s.high[tid] = 0;
        if (pass == 1) s.count[tid] = 0;  // read by the first pass's digit choice
      }
      s.bins[tid] = sum;
    }
    __syncthreads();
    if (tid < 32) {  // lane l scans bins 255 - 8l down to 248 - 8l
      Mass c[8], sum = 0;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        c[j] = s.bins[kBins - 1 - 8 * lane - j];
        sum += c[j];
      }
      Mass incl = sum;  // weight of the bins of lanes 0..lane, all at or above ours
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const Mass up = __shfl_up_sync(kFullMask, incl, o);
        if (lane >= o) incl += up;
      }
      if (pass == 0 && fraction > 0.0f) {
        const Mass total = __shfl_sync(kFullMask, incl, 31);
        need = static_cast<Mass>(ceil(static_cast<double>(fraction) * static_cast<double>(total)));
      }
      need = max(need, Mass{1});  // an empty bin is never chosen
      // The first lane whose bins bring the running weight to need holds the digit. There is
      // one: the weight at or above the prefix reached need in the pass before.
      const uint32_t reach = __ballot_sync(kFullMask, above + incl >= need);
      const int owner = reach ? __ffs(reach) - 1 : 31;
      int digit = 0;
      Mass run = above + incl - sum;
      if (lane == owner) {
        bool found = false;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          if (!found && run + c[j] >= need) {
            found = true;
            digit = kBins - 1 - 8 * lane - j;
          } else if (!found) {
            run += c[j];
          }
        }
        if (!found) digit = 0;  // unreachable
      }
      digit = __shfl_sync(kFullMask, digit, owner);
      above = __shfl_sync(kFullMask, run, owner);
      if (lane == 0) {
        s.prefix = prefix | (static_cast<uint32_t>(digit) << shift);
        if (pass == 0) {
          const uint32_t matching = kMass ? s.count[digit] : static_cast<uint32_t>(s.bins[digit]);
          s.gather = matching <= kGatherCapacity;
          s.gathered = 0;
        }
      }
    }
    __syncthreads();
    prefix = s.prefix;
    gather = s.gather;
  }
  __syncthreads();  // s.prefix is read before the next select writes it
  return prefix;
}

// Shared state of the draw.
struct DrawScratch {
  double seg_sum[kWarps];  // weight of each warp's segment
  int seg_last[kWarps];    // last candidate of each warp's segment, or -1
  double seg_before[kWarps];  // running weight before each segment
  double target;
  int chosen;  // the warp whose segment holds the target, or -1
  int found;   // the token drawn, or -1
};

// The weight of a candidate in the draw. expf in float, not exp in double: it runs once per
// candidate (the whole row under plain temperature sampling), and its error of an ulp or two
// only moves a draw that lands within that of a boundary. Deterministic.
__device__ __forceinline__ float DrawWeight(float z, float z_max) { return expf(z - z_max); }

// Draws a candidate (OrderedKey(x[i] * inv_t) >= floor_key) with probability proportional to
// its weight, walking them in token-id order with u * total, u = UniformDouble(seed, 0, step),
// as the host reference does; the sums are in double. Warp w owns a contiguous segment of the
// row and sums it with coalesced loads; the running sums of the segments are chained one after
// another by one thread, so each segment's span starts where the one before ended and exactly
// one holds the target. That warp alone then gives each lane a contiguous piece of the segment,
// chains the pieces the same way, and the lane whose piece holds the target walks it. Every
// thread calls it and gets the token.
__device__ int Draw(const float* x, int v, float inv_t, float z_max, uint32_t floor_key,
                    double u, DrawScratch& s) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int seg = (v + kWarps - 1) / kWarps;
  const int seg_begin = min(v, warp * seg), seg_end = min(v, seg_begin + seg);
  double sum = 0.0;
  int last = -1;
  for (int i = seg_begin + lane; i < seg_end; i += 32) {
    const float z = x[i] * inv_t;
    if (OrderedKey(z) >= floor_key) {
      sum += DrawWeight(z, z_max);
      last = i;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_xor_sync(kFullMask, sum, o);
    last = max(last, __shfl_xor_sync(kFullMask, last, o));
  }
  if (lane == 0) {
    s.seg_sum[warp] = sum;
    s.seg_last[warp] = last;
  }
  __syncthreads();
  if (tid == 0) {
    double running = 0.0;
#pragma unroll 4
    for (int w = 0; w < kWarps; ++w) {
      s.seg_before[w] = running;
      running += s.seg_sum[w];
    }
    const double target = u * running;
    int chosen = -1;
#pragma unroll 4
    for (int w = 0; w < kWarps; ++w) {
      const double after = w + 1 < kWarps ? s.seg_before[w + 1] : running;
      if (chosen < 0 && target >= s.seg_before[w] && target < after) chosen = w;
    }
    int fallback = -1;  // rounding can leave the target at the very end: the last candidate
#pragma unroll 4
    for (int w = 0; w < kWarps; ++w) fallback = max(fallback, s.seg_last[w]);
    s.target = target;
    s.chosen = chosen;
    s.found = fallback;
  }
  __syncthreads();
  if (warp == s.chosen) {
    const double target = s.target;
    const int piece = (seg_end - seg_begin + 31) / 32;
    const int begin = min(seg_end, seg_begin + lane * piece), end = min(seg_end, begin + piece);
    double part = 0.0;
    for (int i = begin; i < end; ++i) {
      const float z = x[i] * inv_t;
      if (OrderedKey(z) >= floor_key) part += DrawWeight(z, z_max);
    }
    double through = lane == 0 ? s.seg_before[warp] + part : part;
#pragma unroll 1
    for (int l = 1; l < 32; ++l) {  // chained left to right: 31 dependent steps
      const double prev = __shfl_up_sync(kFullMask, through, 1);
      if (lane == l) through = prev + part;
    }
    const double up = __shfl_up_sync(kFullMask, through, 1);
    const double before = lane > 0 ? up : s.seg_before[warp];
    const bool holds = target >= before && target < through;
    int found = -1;
    if (holds) {
      double remaining = target - before;
      for (int i = begin; i < end; ++i) {
        const float z = x[i] * inv_t;
        if (OrderedKey(z) < floor_key) continue;
        found = i;  // the piece's last candidate if rounding leaves remaining >= 0 at its end
        remaining -= DrawWeight(z, z_max);
        if (remaining < 0.0) break;
      }
    }
    // No lane holds the target when the pieces' sum rounds below the segment's: its last
    // candidate then.
    const uint32_t holders = __ballot_sync(kFullMask, holds);
    if (holders == 0 && lane == 0) s.found = s.seg_last[warp];
    if (holders != 0 && lane == __ffs(holders) - 1) s.found = found;
  }
  __syncthreads();
  return s.found;
}

__global__ void __launch_bounds__(kThreads) SampleKernel(SampleParams p) {
  WaitForPriorGrids();
  __shared__ float scratch_f[kWarps];
  __shared__ float scratch_f2[kWarps];
  __shared__ int scratch_i[kWarps];
  __shared__ RadixScratch radix;
  __shared__ DrawScratch draw;
  extern __shared__ float gathered[];  // [kGatherCapacity]
  const int row = blockIdx.x, tid = threadIdx.x, v = p.vocab;
  const float* x = p.logits + static_cast<int64_t>(row) * v;
  const DeviceSamplingParams sp = p.params[row];

  // One pass: max, the sum of exponentials relative to it (online), and the first argmax.
  MaxSumArg run{-FLT_MAX, 0.0f, v};
  ForEachLogit(x, v, [&](int i, float xi) {
    if (xi > run.m) {
      run.s = run.s * __expf(run.m - xi) + 1.0f;
      run.m = xi;
      run.idx = i;
    } else {
      run.s += __expf(xi - run.m);
    }
  });
  const MaxSumArg all = BlockMaxSumArg(run, scratch_f, scratch_f2, scratch_i);
  const float m = all.m;
  const double lse = m + log(static_cast<double>(all.s));

  int token;
  if (sp.temperature == 0.0f || sp.top_k == 1) {
    token = all.idx;
  } else {
    const float inv_t = 1.0f / sp.temperature;
    const float z_max = m * inv_t;
    const bool top_k = sp.top_k > 0 && sp.top_k < v, top_p = sp.top_p < 1.0f;
    uint32_t floor_key = 0;  // candidates: OrderedKey(z) >= floor_key
    if (top_k || top_p) {
      for (int i = tid; i < kBins * 32; i += kThreads) radix.low[i] = 0;
      if (tid < kBins) {
        radix.high[tid] = 0;
        radix.count[tid] = 0;
      }
      __syncthreads();
    }
    if (top_k) {  // the k-th largest key: the largest with at least k values at or above it
      floor_key = RadixSelect<false>(x, v, inv_t, 0, static_cast<Mass>(sp.top_k), 0.0f,
                                     [](float) { return Mass{1}; }, radix, gathered);
    }
    if (top_p) {  // the largest key whose candidates at or above it hold top_p of the mass
      const uint32_t key = RadixSelect<true>(
          x, v, inv_t, floor_key, 0, sp.top_p,
          [z_max](float z) { return __float2ull_rz(__expf(z - z_max) * kMassScale); }, radix,
          gathered);
      floor_key = max(floor_key, key);
    }
    if (sp.min_p > 0.0f) floor_key = max(floor_key, OrderedKey(z_max + logf(sp.min_p)));
    token = Draw(x, v, inv_t, z_max, floor_key, UniformDouble(sp.seed, 0, sp.step), draw);
  }
  if (tid == 0) {
    p.tokens[row] = token;
    p.logprobs[row] = static_cast<float>(x[token] - lse);
  }
}

}  // namespace

cudaError_t LaunchSample(const SampleParams& p, cudaStream_t stream) {
  if (p.rows == 0) return cudaSuccess;
  cudaFuncSetAttribute(SampleKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(kGatherBytes));
  LaunchPdl(SampleKernel, p.rows, kThreads, kGatherBytes, stream, p);
  return cudaGetLastError();
}

}  // namespace tokenfab::cuda
