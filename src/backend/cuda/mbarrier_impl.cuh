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
