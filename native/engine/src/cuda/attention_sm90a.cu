// Attention on Hopper's warpgroup MMA (wgmma, sm_90a only: this file is built for that target
// alone, see native/CMakeLists.txt): forward, dq and dkv. Same plans, tiles, masks, softmax and
// stores as the mma.sync kernels in attention.cu (attention_kernels.cuh); what changes is how
// the products run.
//
// One CTA = one warpgroup (4 warps) per 64-row tile, as in attention.cu, so every pattern and
// plan works unchanged. Each warp still owns 16 rows: wgmma's accumulator gives warp w of the
// warpgroup rows 16 w .. 16 w + 15 in mma.sync's m16n8 layout, so the element-wise code is the
// mma.sync kernels' own.
// - Products with both operands in shared memory (S = Q K^T, dP = dO V^T, and their transposes
//   in dkv) use wgmma m64n64k16 with K-major descriptors: the tensor cores read the tiles
//   directly (no ldmatrix into registers; mma.sync's 16-row products read each B fragment
//   once per warp, 4 times per tile).
// - Products whose A is computed (P V, dS K, P^T dO, dS^T Q) use wgmma m64nDk16 with A from
//   registers (a 64 x 64 accumulator rounded to bf16 is already in wgmma's A-fragment layout)
//   and B as an N-major ("transposed") operand: the row-major [token][d] tile as it is.
// Tiles are stored with the 128-byte swizzle wgmma reads (load_tile<D, true>): bank-conflict
// free without padding. cp.async writes them (generic proxy), so each thread fences before the
// barrier that publishes them to the tensor cores (async proxy).
// Only head dims 64 and 128 (whole 128-byte rows); 32 and 96 keep the mma.sync kernels.
// The dq kernel also computes dvec = rowsum(dO * O) for its rows (dq_dvec) and writes it for dkv:
// no separate pass over O and dO.
// H100, T = 8192, hd 128 (NOTES.md run 10): fwd 1.235 -> 0.768 ms, bwd 3.68 -> 2.06 ms; with the
// overlapped dq / dkv (run 11) bwd 1.89 ms.
//
// Overlap inside the warpgroup: wgmma runs asynchronously until wgmma.wait_group, so a product
// can run while the warps do element-wise work that does not need it. Each overlapping kernel
// commits its products in separate groups and waits for one only where its result is read
// (groups complete in commit order; wg_wait<N> = at most N still pending). Meanwhile no
// instruction may touch the registers of a product in flight (its accumulator, its register-A
// fragments), and a barrier after which cp.async overwrites a tile still needs every product
// that reads the tile completed.
// - Forward: none inside a CTA. A pipelined forward (S of the next key tile issued before P V
//   of this one, two K/V buffers, 2 CTAs per SM at D = 128) lost to the one-stage kernel's 3 CTAs
//   per SM, whose warpgroups already overlap each other's softmax (NOTES.md run 11: 0.793 vs
//   0.759 ms at hd128, T = 8192); it is in commit 6bf083b.
// - dq, OVERLAP 1: S, then dP; P = exp2(S - lse) runs while dP is in flight. OVERLAP 2 (default,
//   two stages): also dQ += dS K stays in flight into the next step, until the next S is issued.
// - dkv, OVERLAP 1: S^T, then dP^T; P^T while dP^T runs; dV += P^T dO issued at once; dS^T
//   while dV runs; dK += dS^T Q; both waited for before the next query tile's barrier.
//   OVERLAP 2 (default, two stages): dV and dK stay in flight until the next S^T is issued.
// The run-10 backward kernels (OVERLAP 0) stay selectable. The element-wise
// math is the same per element and in the same order (the helpers are split at the wait, not
// changed), so every variant gives bit-identical results.
#include <cuda_bf16.h>


#include "attention_kernels.cuh"

namespace lcx::cuda::attnk {

namespace {

// This file is compiled for sm_90a only; the guard keeps a stray compile for another target
// (an IDE, a different CMake setup) building, with kernels that do nothing.
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LCX_WGMMA_DEVICE 1
#endif

constexpr int kPanel = TL * 64;  // elements of one 64-row x 128-byte swizzled panel (8 KB)

// Shared-memory matrix descriptor, 128-byte swizzle (PTX ISA "Matrix Descriptor Format"):
// start address, leading- and stride-dimension byte offsets, all >> 4.
// K-major operands (Q, K): the 16-column k-step sits inside one 128-byte row, so the leading
// offset is unused (1); 8-row groups are 1024 bytes apart. N-major V: the leading offset steps
// between 64-column panels, the stride offset between 8-row (key) groups.
__device__ __forceinline__ uint64_t sw128_desc(const bf16* p, uint32_t lead_bytes, uint32_t stride_bytes) {
  const uint32_t a = smem_u32(p);
  return (uint64_t)((a & 0x3FFFF) >> 4) | (uint64_t)((lead_bytes >> 4) & 0x3FFF) << 16 |
         (uint64_t)((stride_bytes >> 4) & 0x3FFF) << 32 | 1ull << 62;
}

// K-major operand at k-step kk (16 columns): 32 bytes into the 128-byte rows of panel kk / 4.
__device__ __forceinline__ uint64_t kmajor_desc(const bf16* tile, int kk) {
  return sw128_desc(tile + (kk >> 2) * kPanel + (kk & 3) * 16, 16, 1024);
}
// N-major operand (rows = the k dimension) at k-step kk: 16 rows (2048 bytes) further.
__device__ __forceinline__ uint64_t nmajor_desc(const bf16* tile, int kk) {
  return sw128_desc(tile + kk * 16 * 64, kPanel * 2, 1024);
}
// bf16 A fragments of a 64 x 64 accumulator (k = its columns), in wgmma's register-A layout.
__device__ __forceinline__ void to_a_frags(uint32_t (&fa)[4][4], const float (&s)[8][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) {
    fa[kk][0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
    fa[kk][1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
    fa[kk][2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    fa[kk][3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}
// The dynamic shared memory from its first 1024-byte boundary (the launch adds 1 KB): swizzled
// panels must start 1024-byte aligned in the shared window.
__device__ __forceinline__ bf16* swizzle_base(unsigned char* raw) {
  return reinterpret_cast<bf16*>(raw + ((1024u - (smem_u32(raw) & 1023u)) & 1023u));
}
template <int NT>
__device__ __forceinline__ void zero(float (&d)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; j++) d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.f;
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N of this warpgroup's committed wgmma groups are pending (groups complete
// in commit order, so wg_wait<1> after committing groups A then B means A is done).
template <int N>
__device__ __forceinline__ void wg_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// The accumulators are written asynchronously: pin them (no instruction) so that the compiler
// neither reads them before the wait nor moves them between issue and wait. Pinning register-A
// fragments after the wait keeps them alive (unchanged) while the tensor cores still read them.
// Never pin registers of a wgmma still in flight.
template <int NT>
__device__ __forceinline__ void pin(float (&d)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) asm volatile("" : "+f"(d[j][i])::"memory");
}
__device__ __forceinline__ void pin(uint32_t (&a)[4][4]) {
#pragma unroll
  for (int j = 0; j < 4; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) asm volatile("" : "+r"(a[j][i])::"memory");
}

#ifdef LCX_WGMMA_DEVICE
// d (64 x 64) (+)= A (64 x 16, smem) . B (16 x 64, smem), both K-major.
__device__ __forceinline__ void wgmma_n64_ss(float (&d)[8][4], uint64_t da, uint64_t db, int acc) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
      : "l"(da), "l"(db), "r"(acc));
}
// d (64 x 64) (+)= A (64 x 16, registers) . B (16 x 64, smem, K-major).
__device__ __forceinline__ void wgmma_n64_rs(float (&d)[8][4], const uint32_t (&a)[4], uint64_t db, int acc) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 0;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc));
}
// d (64 x 64) += A (64 x 16, registers) . B (16 x 64, smem, N-major: transposed).
__device__ __forceinline__ void wgmma_n64_rs_tb(float (&d)[8][4], const uint32_t (&a)[4], uint64_t db, int acc) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc));
}
// d (64 x 128) += A (64 x 16, registers) . B (16 x 128, smem, N-major: transposed).
__device__ __forceinline__ void wgmma_n128_rs_tb(float (&d)[16][4], const uint32_t (&a)[4], uint64_t db, int acc) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(acc));
}
#endif

// d (64 x D) += A (registers) . B (16 x D, N-major): P V, dS K, P^T dO, dS^T Q.
template <int D>
__device__ __forceinline__ void wgmma_rs_t(float (&o)[D / 8][4], const uint32_t (&a)[4], uint64_t db) {
#ifdef LCX_WGMMA_DEVICE
  if constexpr (D == 128) wgmma_n128_rs_tb(o, a, db, 1);
  else wgmma_n64_rs_tb(o, a, db, 1);
#endif
}

// Q's A fragments for the register-A S product (QREG): rows warp * 16 + (lane & 15), 16-byte
// chunk 2 kk + lane / 16 of the swizzled tile.
template <int D>
__device__ __forceinline__ void load_q_frags(uint32_t (&qf)[D / 16][4], const bf16* sQ, int warp, int lane) {
  const int row = warp * 16 + (lane & 15);
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    const int c = 2 * kk + (lane >> 4);
    ldsm_x4(qf[kk], sQ + (c >> 3) * kPanel + row * 64 + (((c & 7) ^ (row & 7)) << 3));
  }
}
// Issues S = Q K^T over D / 16 k-steps (no fence, no commit): Q from registers (QREG) or shared.
template <int D, bool QREG>
__device__ __forceinline__ void issue_scores(float (&s)[8][4], const uint32_t (&qf)[QREG ? D / 16 : 1][4],
                                             const bf16* sQ, const bf16* cK) {
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
#ifdef LCX_WGMMA_DEVICE
    if constexpr (QREG) wgmma_n64_rs(s, qf[kk], kmajor_desc(cK, kk), kk);
    else wgmma_n64_ss(s, kmajor_desc(sQ, kk), kmajor_desc(cK, kk), kk);
#endif
  }
}

#ifdef LCX_WGMMA_DEVICE
// Issue helpers for the overlapping kernels (no fence, no commit).
// acc (64 x 64) = A . B^T over D / 16 k-steps, A and B K-major in shared memory: S, dP, S^T, dP^T.
template <int D>
__device__ __forceinline__ void issue_ss_n64(float (&acc)[8][4], const bf16* ta, const bf16* tb) {
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) wgmma_n64_ss(acc, kmajor_desc(ta, kk), kmajor_desc(tb, kk), kk);
}
// acc (64 x D) += A (registers, 64 x 64) . B (64 x D, N-major) over 4 k-steps: P V, dS K, P^T dO,
// dS^T Q.
template <int D>
__device__ __forceinline__ void issue_rs_acc(float (&acc)[D / 8][4], const uint32_t (&fa)[4][4], const bf16* tb) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) wgmma_rs_t<D>(acc, fa[kk], nmajor_desc(tb, kk));
}
// S = A1 . B1^T and dP = A2 . B2^T (dq: Q K^T, dO V^T; dkv: K Q^T, V dO^T), then waited for up to
// where the kernel's OVERLAP level needs them: 0, one commit group for both and a full wait; >= 1,
// two groups and S alone (dP may still run: dp stays untouched until the next wait).
template <int D, int OVERLAP>
__device__ __forceinline__ void issue_s_dp(float (&s)[8][4], float (&dp)[8][4], const bf16* a1, const bf16* b1,
                                           const bf16* a2, const bf16* b2) {
  if constexpr (OVERLAP >= 1) {
    issue_ss_n64<D>(s, a1, b1);
    wg_commit();
    issue_ss_n64<D>(dp, a2, b2);
    wg_commit();
    wg_wait<1>();
    pin(s);
  } else {
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
      wgmma_n64_ss(s, kmajor_desc(a1, kk), kmajor_desc(b1, kk), kk);
      wgmma_n64_ss(dp, kmajor_desc(a2, kk), kmajor_desc(b2, kk), kk);
    }
    wg_commit();
    wg_wait<0>();
    pin(s);
    pin(dp);
  }
}
#endif
__device__ __forceinline__ void zero_frags(uint32_t (&fa)[4][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) fa[kk][0] = fa[kk][1] = fa[kk][2] = fa[kk][3] = 0u;
}

// A plan entry (its 4 blocks and flags), which the fwd / dq loops read one step ahead: the
// read's latency then hides behind the step before instead of holding up this step's tile loads
// (the one-stage forward's p.blk[e] read had 4% of its stall samples, NOTES.md run 15).
struct PlanEntry {
  int4 blk;
  int fl;
};
__device__ __forceinline__ PlanEntry plan_entry(const KParams& p, int e, int e1) {
  return e < e1 ? PlanEntry{p.blk[e], p.flags[e]} : PlanEntry{make_int4(-1, -1, -1, -1), 0};
}

// One step of the fwd / dq loop over key tiles: entry e's K and V tiles staged (stage_kv), and
// this warp's pair bits (its 16 queries x the 4 key blocks) and element flag of the entry.
struct KvStep {
  const bf16 *k, *v;
  int wb;
  bool elem;
};
template <int D, int STAGES>
__device__ __forceinline__ KvStep kv_step(bf16* sK, bf16* sV, const bf16* kg, const bf16* vg,
                                             const KParams& p, const PlanEntry& en, int e, int e0, int e1,
                                             int tid, int warp) {
  const int buf = stage_kv<D, STAGES, true>(sK, sV, kg, vg, p, e, e0, e1, en.blk, tid);
  return {sK + buf * TL * D, sV + buf * TL * D, (en.fl >> (warp * 4)) & 0xF, (en.fl & kElem) != 0};
}

// The warp's scratch for store_rows_staged at the start of shared memory, or nullptr when the
// outputs are not aligned for it. The barrier ends the kernel's own use of shared memory.
template <int D>
__device__ __forceinline__ bf16* out_scratch(const KParams& p, unsigned char* smem_raw, int warp) {
  static_assert(store_scratch_bytes(D) <= 3 * TL * D * 2, "fits the smallest kernel's tiles (fwd, one stage)");
  if (!p.staged_stores) return nullptr;
  __syncthreads();
  return swizzle_base(smem_raw) + warp * 16 * (D + 8);
}

// CTAs per SM the registers are held to: one stage (48 KB of tiles at D = 128) leaves room for
// 4 CTAs by shared memory, two stages (80 KB) for 2.
constexpr int wg_min_ctas(int D, int STAGES, bool QREG) {
  return STAGES == 2 ? 2 : QREG && D == 128 ? 2 : 3;
}

// QREG: Q's fragments are loaded once into registers (ldmatrix) and S uses the register-A
// wgmma; otherwise the tensor cores read Q from shared memory at every tile.
template <int D, int STAGES, bool QREG>
__global__ void __launch_bounds__(NTHREADS, wg_min_ctas(D, STAGES, QREG)) attn_fwd_wgmma_kernel(const KParams p) {
#ifdef LCX_WGMMA_DEVICE
  constexpr int KT = D / 16, NT = D / 8, TS = TL * D;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  bf16* sQ = swizzle_base(smem_raw);
  bf16* sK = sQ + TS;
  bf16* sV = sK + STAGES * TS;
  const AttnArgs& a = p.a;
  const Cta c = cta_here(p);
  const int qt = c.tile, h = c.h, b = c.b, tid = c.tid, warp = c.warp, lane = c.lane, g = c.g, t4 = c.t4;
  const int hl = c.hl, e0 = c.e0, e1 = c.e1;
  const bf16* qg = a.q + b * a.q_batch + h * D;
  const bf16* kg = a.k + b * a.kv_batch + h * D;
  const bf16* vg = a.v + b * a.kv_batch + h * D;
  const int32_t* seg = c.seg;
  const int q0 = qt * TL;

  load_tile<D, true>(sQ, qg, a.q_row, contiguous_blocks(qt), a.Tq, tid);
  cp_async_commit();
  prefetch_kv<D, STAGES, true>(sK, sV, kg, vg, p, e0, e1, tid);
  cp_async_commit();
  cp_async_wait<1>();
  fence_async_smem();
  __syncthreads();
  uint32_t qf[QREG ? KT : 1][4];
  if constexpr (QREG) load_q_frags<D>(qf, sQ, warp, lane);

  float o[NT][4], s[8][4];
  zero(o);
  zero(s);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const float sl2 = p.scale_log2;

  PlanEntry next = plan_entry(p, e0, e1);
  for (int e = e0; e < e1; e++) {
    const PlanEntry cur = next;
    next = plan_entry(p, e + 1, e1);
    const KvStep st = kv_step<D, STAGES>(sK, sV, kg, vg, p, cur, e, e0, e1, tid, warp);
    const bf16 *cK = st.k, *cV = st.v;
    const int wb = st.wb;
    const bool elem = st.elem;

    wg_fence();
    issue_scores<D, QREG>(s, qf, sQ, cK);
    wg_commit();
    wg_wait<0>();
    pin(s);

    if (wb != 0xF || elem) fwd_mask(s, p, hl, e, wb, elem, q0 + warp * 16, g, t4, seg);
    fwd_online_softmax(s, o, m, l, sl2);

    // O += P V over the tile's 64 keys: 4 k-steps of 16 keys (2048 bytes of V each).
    uint32_t pa[4][4];
    to_a_frags(pa, s);
    pin(o);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < 4; kk++) wgmma_rs_t<D>(o, pa[kk], nmajor_desc(cV, kk));
    wg_commit();
    wg_wait<0>();
    pin(o);
    __syncthreads();  // the next stage_kv overwrites this entry's buffer
  }
  cp_async_wait<0>();
  fwd_store<D>(a, o, m, l, b, h, q0 + warp * 16, g, t4, out_scratch<D>(p, smem_raw, warp));
#endif
}

// dvec = rowsum(dO * O) of the warp's rows row0 + g, row0 + g + 8 (the D term of FA2's
// backward), computed by dq from its dO tile and O, and written for dkv. The quad of threads of
// a row takes 16-byte chunks t4, t4 + 4, ...; rows past Tq get 0.
template <int D>
__device__ __forceinline__ void dq_load_o(const AttnArgs& a, uint4 (&orow)[2][D / 32], int b, int h, int row0,
                                          int g, int t4) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = row0 + g + r * 8;
    const uint4* src = reinterpret_cast<const uint4*>(a.o + b * a.o_batch + (long long)row * a.o_row + h * D);
#pragma unroll
    for (int m = 0; m < D / 32; m++) orow[r][m] = row < a.Tq ? src[t4 + 4 * m] : make_uint4(0, 0, 0, 0);
  }
}
template <int D>
__device__ __forceinline__ void dq_dvec(const AttnArgs& a, float (&dvr)[2], const uint4 (&orow)[2][D / 32],
                                        const bf16* sdO, int b, int h, int row0, int trow0, int g, int t4) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int tr = trow0 + g + r * 8;  // row of the swizzled tile
    float acc = 0.f;
#pragma unroll
    for (int m = 0; m < D / 32; m++) {
      const int c = t4 + 4 * m;
      const uint4 d = *reinterpret_cast<const uint4*>(sdO + (c >> 3) * kPanel + tr * 64 + (((c & 7) ^ (tr & 7)) << 3));
      float od[8], dd[8];
      unpack8(orow[r][m], od);
      unpack8(d, dd);
#pragma unroll
      for (int i = 0; i < 8; i++) acc = fmaf(od[i], dd[i], acc);
    }
    acc = quad_sum(acc);
    const int row = row0 + g + r * 8;
    dvr[r] = row < a.Tq ? acc : 0.f;
    if (row < a.Tq && t4 == 0) a.dvec[((long long)b * a.NH + h) * a.Tq + row] = acc;
  }
}

// dq: per query tile, S = Q K^T and dP = dO V^T (Q, dO, K, V all read from shared memory), dS
// in registers (dq_ds), dQ += dS K with K as the N-major operand. dvec comes from dq_dvec.
// OVERLAP:
//  0: the run-10 kernel: S and dP in one commit group, dS K in another, each waited for at once.
//  1: S and dP in two groups: P = exp2(s2 - lse2) with its mask (dq_p) runs while dP is in
//     flight, only dS = P (dP - dvec) waits for it.
//  2 (two stages only): as 1, and dQ += dS K stays in flight into the next step, waited for
//     right after the next S is issued; a second barrier then frees its K buffer for the next
//     load. The tensor cores run dQ_e, S_e+1, dP_e+1 back to back.
template <int D, int STAGES, int OVERLAP>
__global__ void __launch_bounds__(NTHREADS, 2) attn_dq_wgmma_kernel(const KParams p) {
  static_assert(OVERLAP < 2 || STAGES == 2, "dQ in flight across steps needs a second K buffer");
#ifdef LCX_WGMMA_DEVICE
  constexpr int NT = D / 8, TS = TL * D;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  bf16* sQ = swizzle_base(smem_raw);
  bf16* sdO = sQ + TS;
  bf16* sK = sdO + TS;
  bf16* sV = sK + STAGES * TS;
  const AttnArgs& a = p.a;
  const Cta c = cta_here(p);
  const int qt = c.tile, h = c.h, b = c.b, tid = c.tid, warp = c.warp, g = c.g, t4 = c.t4;
  const int hl = c.hl, e0 = c.e0, e1 = c.e1;
  const bf16* kg = a.k + b * a.kv_batch + h * D;
  const bf16* vg = a.v + b * a.kv_batch + h * D;
  const int32_t* seg = c.seg;
  const int q0 = qt * TL;

  load_tile<D, true>(sQ, a.q + b * a.q_batch + h * D, a.q_row, contiguous_blocks(qt), a.Tq, tid);
  load_tile<D, true>(sdO, a.dout + b * a.o_batch + h * D, a.o_row, contiguous_blocks(qt), a.Tq, tid);
  cp_async_commit();
  prefetch_kv<D, STAGES, true>(sK, sV, kg, vg, p, e0, e1, tid);
  cp_async_commit();
  float lse[2], dvr[2];
  uint4 orow[2][D / 32];
  dq_load_o<D>(a, orow, b, h, q0 + warp * 16, g, t4);
  dq_row_lse(a, b, h, q0 + warp * 16, g, lse);
  cp_async_wait<1>();
  fence_async_smem();
  __syncthreads();
  dq_dvec<D>(a, dvr, orow, sdO, b, h, q0 + warp * 16, warp * 16, g, t4);

  float dq[NT][4], s[8][4], dp[8][4];
  zero(dq);
  zero(s);
  zero(dp);

  if constexpr (OVERLAP == 2) {
    uint32_t da[4][4];  // dS as A fragments: read by dQ += dS K until the next step's wait
    zero_frags(da);
    // The last wait sits inside the guard: were it also reached from the path that skips the
    // loop (dq = 0 there), ptxas would serialize every wgmma of the kernel.
    if (e1 > e0) {
      for (int e = e0; e < e1; e++) {
        const int fl = p.flags[e];
        const int buf = (e - e0) & 1;
        const bf16* cK = sK + buf * TS;
        const bf16* cV = sV + buf * TS;
        cp_async_wait<0>();  // K_e and V_e
        fence_async_smem();
        __syncthreads();
        wg_fence();
        issue_ss_n64<D>(s, sQ, cK);
        wg_commit();
        wg_wait<1>();  // entry e - 1's dS K is done (S may still run); with none, returns at once
        pin(dq);
        pin(da);
        issue_ss_n64<D>(dp, sdO, cV);
        wg_commit();
        __syncthreads();  // every warp is past that wait: entry e - 1's K buffer is free
        if (e + 1 < e1) {
          const int4 nb4 = p.blk[e + 1];
          load_tile<D, true>(sK + (buf ^ 1) * TS, kg, a.kv_row, nb4, a.Tk, tid);
          load_tile<D, true>(sV + (buf ^ 1) * TS, vg, a.kv_row, nb4, a.Tk, tid);
        }
        cp_async_commit();
        wg_wait<1>();  // S is done, dP may still run: dp stays untouched until the next wait
        pin(s);
        const int wb = (fl >> (warp * 4)) & 0xF;
        const bool elem = fl & kElem;
        if (wb == 0xF && !elem)
          dq_p<true>(s, p, hl, e, wb, elem, q0 + warp * 16, g, t4, lse, seg);
        else
          dq_p<false>(s, p, hl, e, wb, elem, q0 + warp * 16, g, t4, lse, seg);
        wg_wait<0>();
        pin(dp);
        dq_ds_from_p(s, dp, dvr);
        to_a_frags(da, s);
        wg_fence();
        issue_rs_acc<D>(dq, da, cK);
        wg_commit();  // waited for in the next step, or below
      }
      wg_wait<0>();
      pin(dq);
    }
  } else {
    for (int e = e0; e < e1; e++) {
      const KvStep st = kv_step<D, STAGES>(sK, sV, kg, vg, p, plan_entry(p, e, e1), e, e0, e1, tid, warp);
      const bf16 *cK = st.k, *cV = st.v;
      const int wb = st.wb;
      const bool elem = st.elem;
      wg_fence();
      issue_s_dp<D, OVERLAP>(s, dp, sQ, cK, sdO, cV);
      const bool full = wb == 0xF && !elem;
      if constexpr (OVERLAP == 1) {
        if (full)
          dq_p<true>(s, p, hl, e, wb, elem, q0 + warp * 16, g, t4, lse, seg);
        else
          dq_p<false>(s, p, hl, e, wb, elem, q0 + warp * 16, g, t4, lse, seg);
        wg_wait<0>();
        pin(dp);
        dq_ds_from_p(s, dp, dvr);
      } else {
        if (full)
          dq_ds<true>(s, dp, p, hl, e, wb, elem, q0 + warp * 16, g, t4, lse, dvr, seg);
        else
          dq_ds<false>(s, dp, p, hl, e, wb, elem, q0 + warp * 16, g, t4, lse, dvr, seg);
      }
      uint32_t da[4][4];
      to_a_frags(da, s);
      pin(dq);
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < 4; kk++) wgmma_rs_t<D>(dq, da[kk], nmajor_desc(cK, kk));
      wg_commit();
      wg_wait<0>();  // dS K reads this stage's K: done before the barrier lets it be overwritten
      pin(dq);
      __syncthreads();
    }
  }
  cp_async_wait<0>();
  dq_store<D>(a, dq, p.scale, b, h, q0 + warp * 16, g, t4, out_scratch<D>(p, smem_raw, warp));
#endif
}

// dkv: per group of 4 key blocks (warp w owns block w: rows 16 w.. of the warpgroup's 64), over
// the group's query tiles: S^T = K Q^T and dP^T = V dO^T, P^T and dS^T in registers (on all 64
// queries at once: no 32-query halves as in the mma.sync kernel, wgmma's operands do not sit in
// registers), dV += P^T dO and dK += dS^T Q with dO and Q as N-major operands. OVERLAP:
//  0: the run-10 kernel: S^T and dP^T in one commit group, dV and dK in another, each waited
//     for at once.
//  1: four groups per query tile, each waited for where its result is needed: S^T | dP^T ->
//     wait S^T, P^T (the exp2s) while dP^T runs -> dV += P^T dO -> wait dP^T, dS^T while dV
//     runs -> dK += dS^T Q -> wait both before the barrier (they read this stage's Q / dO, which
//     a later stage_q overwrites).
//  2 (two stages only): as 1, but dV and dK stay in flight into the next step: waited for right
//     after the next S^T is issued (dP^T's issue follows), then a second barrier frees their
//     Q / dO stage for the next load. The tensor cores run dV, dK, S^T, dP^T back to back.
template <int D, int STAGES, int OVERLAP>
__global__ void __launch_bounds__(NTHREADS, 2) attn_dkv_wgmma_kernel(const KParams p) {
  static_assert(OVERLAP < 2 || STAGES == 2, "dV / dK in flight across steps need a second Q stage");
#ifdef LCX_WGMMA_DEVICE
  constexpr int NT = D / 8, TS = TL * D;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  bf16* sK = swizzle_base(smem_raw);
  bf16* sV = sK + TS;
  bf16* sQ = sV + TS;
  bf16* sdO = sQ + STAGES * TS;
  float* sL = reinterpret_cast<float*>(sdO + STAGES * TS);
  float* sDv = sL + STAGES * TL;
  const AttnArgs& a = p.a;
  const Cta c = cta_here(p);
  const int h = c.h, b = c.b, tid = c.tid, warp = c.warp, g = c.g, t4 = c.t4;
  const int hl = c.hl, li = c.li, e0 = c.e0, e1 = c.e1;
  const int4 kb4 = p.gblk[li];
  const int my_kb = comp(kb4, warp);
  const bf16* qg = a.q + b * a.q_batch + h * D;
  const bf16* dog = a.dout + b * a.o_batch + h * D;
  const float* lseg = a.lse + ((long long)b * a.NH + h) * a.Tq;
  const float* dvg = a.dvec + ((long long)b * a.NH + h) * a.Tq;
  const int32_t* seg = c.seg;

  auto load_q = [&](int stage, int4 qb4) {
    load_tile<D, true>(sQ + stage * TS, qg, a.q_row, qb4, a.Tq, tid);
    load_tile<D, true>(sdO + stage * TS, dog, a.o_row, qb4, a.Tq, tid);
    load_vec64(sL + stage * TL, lseg, qb4, a.Tq, tid);
    load_vec64(sDv + stage * TL, dvg, qb4, a.Tq, tid);
  };
  load_tile<D, true>(sK, a.k + b * a.kv_batch + h * D, a.kv_row, kb4, a.Tk, tid);
  load_tile<D, true>(sV, a.v + b * a.kv_batch + h * D, a.kv_row, kb4, a.Tk, tid);
  cp_async_commit();
  if (STAGES == 2 && e1 > e0) load_q(0, p.blk[e0]);
  cp_async_commit();

  float dk[NT][4], dv[NT][4], s[8][4], dp[8][4];
  zero(dk);
  zero(dv);
  zero(s);
  zero(dp);

  if constexpr (OVERLAP == 2) {
    uint32_t pa[4][4], da[4][4];  // P^T, dS^T as A fragments: read by dV, dK until the next step's wait
    zero_frags(pa);
    zero_frags(da);
    if (e1 > e0) {  // the last wait inside the guard, as in dq
      for (int e = e0; e < e1; e++) {
        const int fl = p.flags[e];
        const int buf = (e - e0) & 1;
        const bf16* cQ = sQ + buf * TS;
        const bf16* cdO = sdO + buf * TS;
        cp_async_wait<0>();  // entry e's Q, dO, lse2, dvec (at e0 also K and V)
        fence_async_smem();
        __syncthreads();
        wg_fence();
        issue_ss_n64<D>(s, sK, cQ);
        wg_commit();
        wg_wait<1>();  // entry e - 1's dV and dK are done (S^T may still run); with none, at once
        pin(dv);
        pin(dk);
        pin(pa);
        pin(da);
        issue_ss_n64<D>(dp, sV, cdO);
        wg_commit();
        __syncthreads();  // every warp is past that wait: entry e - 1's stage is free
        if (e + 1 < e1) load_q(buf ^ 1, p.blk[e + 1]);
        cp_async_commit();
        wg_wait<1>();  // S^T is done, dP^T may still run: dp stays untouched until the next wait
        pin(s);
        const bool elem = fl & kElem;
        const int wb = (fl >> (warp * 4)) & 0xF;  // which of the 4 query blocks see my key block
        const float* cL = sL + buf * TL;
        const float* cDv = sDv + buf * TL;
        if (wb == 0xF && !elem)
          dkv_p<8, true>(s, p, hl, e, wb, elem, 0, my_kb * KB, g, t4, cL, seg);
        else
          dkv_p<8, false>(s, p, hl, e, wb, elem, 0, my_kb * KB, g, t4, cL, seg);
        to_a_frags(pa, s);
        wg_fence();
        issue_rs_acc<D>(dv, pa, cdO);
        wg_commit();
        wg_wait<1>();  // dP^T is done, dV may still run: dv and pa stay untouched
        pin(dp);
        dkv_ds_from_p<8>(s, dp, 0, t4, cDv);
        to_a_frags(da, dp);
        wg_fence();
        issue_rs_acc<D>(dk, da, cQ);
        wg_commit();  // dV and dK are waited for in the next step, or below
      }
      wg_wait<0>();
      pin(dv);
      pin(dk);
    }
  } else {
    for (int e = e0; e < e1; e++) {
      const int fl = p.flags[e];
      const int buf = stage_q<STAGES, true>(p, e, e0, e1, load_q);
      const bf16* cQ = sQ + buf * TS;
      const bf16* cdO = sdO + buf * TS;
      wg_fence();
      issue_s_dp<D, OVERLAP>(s, dp, sK, cQ, sV, cdO);
      const bool elem = fl & kElem;
      const int wb = (fl >> (warp * 4)) & 0xF;  // which of the 4 query blocks see my key block
      const float* cL = sL + buf * TL;
      const float* cDv = sDv + buf * TL;
      const bool full = wb == 0xF && !elem;
      uint32_t pa[4][4], da[4][4];
      if constexpr (OVERLAP == 1) {
        if (full)
          dkv_p<8, true>(s, p, hl, e, wb, elem, 0, my_kb * KB, g, t4, cL, seg);
        else
          dkv_p<8, false>(s, p, hl, e, wb, elem, 0, my_kb * KB, g, t4, cL, seg);
        to_a_frags(pa, s);
        pin(dv);
        wg_fence();  // pa was written since the last fence
        issue_rs_acc<D>(dv, pa, cdO);
        wg_commit();
        wg_wait<1>();  // dP^T is done, dV may still run: dv and pa stay untouched until the last wait
        pin(dp);
        dkv_ds_from_p<8>(s, dp, 0, t4, cDv);
        to_a_frags(da, dp);
        pin(dk);
        wg_fence();
        issue_rs_acc<D>(dk, da, cQ);
        wg_commit();
        wg_wait<0>();
        pin(dv);
        pin(dk);
        pin(pa);
        pin(da);
      } else {
        if (full)
          dkv_ps<8, true>(s, dp, p, hl, e, wb, elem, 0, my_kb * KB, g, t4, cL, cDv, seg);
        else
          dkv_ps<8, false>(s, dp, p, hl, e, wb, elem, 0, my_kb * KB, g, t4, cL, cDv, seg);
        to_a_frags(pa, s);
        to_a_frags(da, dp);
        pin(dv);
        pin(dk);
        wg_fence();
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
          wgmma_rs_t<D>(dv, pa[kk], nmajor_desc(cdO, kk));
          wgmma_rs_t<D>(dk, da[kk], nmajor_desc(cQ, kk));
        }
        wg_commit();
        wg_wait<0>();
        pin(dv);
        pin(dk);
      }
      __syncthreads();
    }
  }
  cp_async_wait<0>();
  dkv_store<D>(a, dk, dv, p.scale, b, h, my_kb < 0 ? -1 : my_kb * KB, g, t4, out_scratch<D>(p, smem_raw, warp));
#endif
}

// Shared memory of each kernel (+ 1 KB for the 1024-byte alignment of the swizzled panels).
size_t fwd_smem(int D, int stages) { return (size_t)(1 + 2 * stages) * TL * D * 2 + 1024; }
size_t dq_smem(int D, int stages) { return (size_t)(2 + 2 * stages) * TL * D * 2 + 1024; }
size_t dkv_smem(int D, int stages) { return (size_t)(2 + 2 * stages) * TL * D * 2 + 2 * stages * TL * 4 + 1024; }

// false when the device cannot run the kernel (no sm_90a image for it): the caller falls back.
template <class K>
bool launch_wg(K kernel, size_t smem, const KParams& p, dim3 grid, cudaStream_t s) {
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  kernel<<<grid, NTHREADS, smem, s>>>(p);
  LCX_LAUNCH_CHECK();
  return true;
}

}  // namespace

bool fwd_wgmma(const KParams& p, int D, dim3 grid, cudaStream_t s) {
  // Experiments (read once): LCX_ATTN_WGMMA_STAGES=1|2 (default 1), LCX_ATTN_WGMMA_QREG=0|1
  // (default 0: Q in registers would cost the one-stage kernel its third CTA per SM).
  static const int st = attn_env_digit("LCX_ATTN_WGMMA_STAGES", 1);
  static const bool qreg = attn_env_digit("LCX_ATTN_WGMMA_QREG", 0) == 1;
#define LCX_FWD(D_, S_, Q_) launch_wg(attn_fwd_wgmma_kernel<D_, S_, Q_>, fwd_smem(D_, S_), p, grid, s)
  if (D == 128)
    return st == 2 ? (qreg ? LCX_FWD(128, 2, true) : LCX_FWD(128, 2, false))
                   : (qreg ? LCX_FWD(128, 1, true) : LCX_FWD(128, 1, false));
  if (D == 64)
    return st == 2 ? (qreg ? LCX_FWD(64, 2, true) : LCX_FWD(64, 2, false))
                   : (qreg ? LCX_FWD(64, 1, true) : LCX_FWD(64, 1, false));
#undef LCX_FWD
  return false;
}

// dq / dkv (read once): LCX_ATTN_WGMMA_DQ_STAGES / _DKV_STAGES = 1 | 2 (default 2);
// LCX_ATTN_WGMMA_DQ_OVERLAP / _DKV_OVERLAP = 0 | 1 | 2 (see the kernels; default 2, which with
// one stage runs as 1). 0 is the run-10 kernel.
#define LCX_BWD(KERNEL, SMEM, D_, S_, O_) launch_wg(KERNEL<D_, S_, O_>, SMEM(D_, S_), p, grid, s)
#define LCX_BWD_D(KERNEL, SMEM, D_)                                                                  \
  (st == 2 ? (ov == 2   ? LCX_BWD(KERNEL, SMEM, D_, 2, 2)                                            \
              : ov == 1 ? LCX_BWD(KERNEL, SMEM, D_, 2, 1)                                            \
                        : LCX_BWD(KERNEL, SMEM, D_, 2, 0))                                           \
           : (ov >= 1 ? LCX_BWD(KERNEL, SMEM, D_, 1, 1) : LCX_BWD(KERNEL, SMEM, D_, 1, 0)))
bool dq_wgmma(const KParams& p, int D, dim3 grid, cudaStream_t s) {
  static const int st = attn_env_digit("LCX_ATTN_WGMMA_DQ_STAGES", 2);
  static const int ov = attn_env_digit("LCX_ATTN_WGMMA_DQ_OVERLAP", 2);
  if (D == 128) return LCX_BWD_D(attn_dq_wgmma_kernel, dq_smem, 128);
  if (D == 64) return LCX_BWD_D(attn_dq_wgmma_kernel, dq_smem, 64);
  return false;
}

bool dkv_wgmma(const KParams& p, int D, dim3 grid, cudaStream_t s) {
  static const int st = attn_env_digit("LCX_ATTN_WGMMA_DKV_STAGES", 2);
  static const int ov = attn_env_digit("LCX_ATTN_WGMMA_DKV_OVERLAP", 2);
  if (D == 128) return LCX_BWD_D(attn_dkv_wgmma_kernel, dkv_smem, 128);
  if (D == 64) return LCX_BWD_D(attn_dkv_wgmma_kernel, dkv_smem, 64);
  return false;
}
#undef LCX_BWD_D
#undef LCX_BWD

}  // namespace lcx::cuda::attnk
