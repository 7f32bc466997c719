// Shared-memory barriers (mbarrier, sm_90) for warp-specialised kernels: producer warps fill a
// ring of stages and consumer warps drain it, each side waiting only on the stage it needs
// instead of a block-wide barrier per stage. A barrier completes a phase when its expected
// number of arrivals is in; waiters name the phase by its parity (0, 1, 0, ...), so a ring of S
// stages waits on parity (j / S) & 1 for its j-th use of a stage. Also the register-count
// handover between a block's warpgroups (setmaxnreg).
#pragma once

#include <cstdint>

#include "backend/cuda/mma_impl.cuh"

namespace tokenfab::cuda {

// Once, by one thread, before a block-wide barrier that publishes it to the other threads.
__device__ __forceinline__ void MbarrierInit(uint64_t* bar, int arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(SmemAddress(bar)),
               "r"(arrivals)
               : "memory");
}

// One arrival, with release semantics: this thread's earlier writes (including shared-memory
// writes made visible to the async proxy by FenceProxyAsync) happen before the phase completes.
__device__ __forceinline__ void MbarrierArrive(uint64_t* bar) {
  asm volatile(
      "{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(
          SmemAddress(bar))
      : "memory");
}

// Until the phase of this parity has completed (acquire: the arrivals' writes are visible).
__device__ __forceinline__ void MbarrierWait(uint64_t* bar, int parity) {
  asm volatile(
      "{\n.reg .pred done;\nwait_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}\n" ::"r"(SmemAddress(bar)),
      "r"(parity)
      : "memory");
}

// One arrival that also expects `bytes` more to land through the async proxy (cp.async.bulk)
// before the phase completes.
__device__ __forceinline__ void MbarrierArriveExpectTx(uint64_t* bar, uint32_t bytes) {
  asm volatile(
      "{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(
          SmemAddress(bar)),
      "r"(bytes)
      : "memory");
}

// An L2 policy for data read once (weights streamed by a decode step): evicted first, so the
// activations and the KV cache keep their lines.
__device__ __forceinline__ uint64_t L2EvictFirstPolicy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}

// Copies `bytes` (a multiple of 16, both addresses 16-byte aligned) from global to shared
// memory through the copy engine; completion is counted on `bar`'s transaction bytes.
__device__ __forceinline__ void BulkCopyToShared(void* dst, const void* src, uint32_t bytes,
                                                 uint64_t* bar, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1], %2, [%3], %4;\n" ::"r"(SmemAddress(dst)),
      "l"(src), "r"(bytes), "r"(SmemAddress(bar)), "l"(policy)
      : "memory");
}

// The warpgroup's per-thread register budget (a multiple of 8 in [24, 256]), executed by all
// of its threads: producers give registers back so that consumers can take them.
template <int kRegs>
__device__ __forceinline__ void SetMaxRegistersDec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void SetMaxRegistersInc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

}  // namespace tokenfab::cuda
