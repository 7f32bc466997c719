// Warpgroup-level tensor-core helpers (wgmma, sm_90a): shared-memory matrix descriptors for
// 128-byte swizzled tiles, the asynchronous m64nNk16 bf16 MMAs with f32 accumulators, and the
// fences that order them against ordinary register and shared-memory accesses.
//
// Tiles are stored as the hardware's 128-byte swizzle expects: a [rows][64] bf16 panel per 64
// columns, each row 128 bytes, its 16-byte chunk c at position c ^ (row % 8), panels 1024-byte
// aligned (SwizzledPanelOffset). The same tile serves as a K-major operand (rows are M or N,
// columns K: Q and K for Q K^T) and as an MN-major one (rows are K, columns N: V for P V).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace tokenfab::cuda {

// Element offset of (row, 16-byte chunk) in a tile of `rows` rows stored as 64-column panels.
__device__ __forceinline__ int SwizzledPanelOffset(int rows, int row, int chunk) {
  return (chunk >> 3) * rows * 64 + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
}

// Descriptor of a 128-byte swizzled operand at shared address `addr`: `lbo` is the byte step
// between 64-column panels along M/N of an MN-major operand (unused by K-major ones), `sbo` the
// step between groups of 8 rows (1024 for a panel's consecutive rows).
__device__ __forceinline__ uint64_t SwizzledDesc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) |
         static_cast<uint64_t>((lbo & 0x3FFFF) >> 4) << 16 |
         static_cast<uint64_t>((sbo & 0x3FFFF) >> 4) << 32 | static_cast<uint64_t>(1) << 62;
}

// Before the first wgmma of a batch whose register operands other code wrote.
__device__ __forceinline__ void WgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void WgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Shared-memory writes of this thread (st.shared, cp.async) become visible to wgmma reads
// after a barrier that follows this fence.
__device__ __forceinline__ void FenceProxyAsync() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving accesses to a wgmma's register operands (accumulators, an A
// fragment) across its issue or wait: the asm statements below read and write them
// asynchronously, after they appear to have returned.
__device__ __forceinline__ void FenceRegister(float& r) { asm volatile("" : "+f"(r)::"memory"); }
__device__ __forceinline__ void FenceRegister(uint32_t& r) { asm volatile("" : "+r"(r)::"memory"); }
template <typename T, int R>
__device__ __forceinline__ void FenceRegisters(T (&d)[R][4]) {
#pragma unroll
  for (int i = 0; i < R; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) FenceRegister(d[i][e]);
  }
}

// The accumulator operands of an m64nNk16 wgmma: N / 2 floats, d[j][e] the (4 j + e)-th.
#define TF_WGMMA_D4(j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define TF_WGMMA_D32(j)                                                                           \
  TF_WGMMA_D4(j), TF_WGMMA_D4(j + 1), TF_WGMMA_D4(j + 2), TF_WGMMA_D4(j + 3), TF_WGMMA_D4(j + 4), \
      TF_WGMMA_D4(j + 5), TF_WGMMA_D4(j + 6), TF_WGMMA_D4(j + 7)
#define TF_WGMMA_REGS32                                                                    \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, " \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define TF_WGMMA_REGS64                                                                         \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
  "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, "  \
  "%38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, "  \
  "%56, %57, %58, %59, %60, %61, %62, %63}"

// D[64 x N] (+)= A[64 x 16] * B[16 x N], A and B in shared memory (descriptors); accumulate 0
// overwrites D.
template <int kTransB>
__device__ __forceinline__ void WgmmaSS(float (&d)[8][4], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " TF_WGMMA_REGS32
      ", %32, %33, p, 1, 1, 0, %35;\n}\n"
      : TF_WGMMA_D32(0)
      : "l"(a), "l"(b), "r"(accumulate), "n"(kTransB));
}
template <int kTransB>
__device__ __forceinline__ void WgmmaSS(float (&d)[16][4], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " TF_WGMMA_REGS64
      ", %64, %65, p, 1, 1, 0, %67;\n}\n"
      : TF_WGMMA_D32(0), TF_WGMMA_D32(8)
      : "l"(a), "l"(b), "r"(accumulate), "n"(kTransB));
}

// The same with A in registers: the m16n8k16 A fragment of the warp's 16 rows.
template <int kTransB>
__device__ __forceinline__ void WgmmaRS(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b,
                                        int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " TF_WGMMA_REGS32
      ", {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
      : TF_WGMMA_D32(0)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(kTransB));
}
template <int kTransB>
__device__ __forceinline__ void WgmmaRS(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b,
                                        int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " TF_WGMMA_REGS64
      ", {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
      : TF_WGMMA_D32(0), TF_WGMMA_D32(8)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(kTransB));
}

#undef TF_WGMMA_REGS64
#undef TF_WGMMA_REGS32
#undef TF_WGMMA_D32
#undef TF_WGMMA_D4

}  // namespace tokenfab::cuda
