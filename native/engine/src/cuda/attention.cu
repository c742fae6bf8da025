// FlashAttention-2-style kernels (see attention.hpp for the plan and the patterns).
//
// Layout: one CTA of 4 warps per (64-row tile, head, batch row); each warp owns 16 rows (one
// 16-row sub-block). The other side of each product is a "virtual tile": 4 blocks of 16 rows
// gathered from wherever the plan says (attention.hpp), with a 16-bit mask of which
// (row sub-block, column block) pairs are computed at all. A warp skips the products of pairs
// its mask bits say are empty, so sparse patterns cost what they attend to at 16-token
// granularity, and the element predicate runs only on tiles the plan flags.
// Matrix products use mma.sync m16n8k16 (bf16 x bf16 -> fp32) with operands from shared memory
// through ldmatrix; shared rows are padded by 16 bytes so ldmatrix's 8 row addresses fall in
// distinct banks. Tiles stream through a 2-stage cp.async pipeline when shared memory allows
// (1 stage on GPUs with ~100 KB per block, e.g. sm_89).
//
// Backward is split in two kernels instead of FA2's single kernel with fp32 atomics on dQ:
//   dkv: per key tile, walk its query tiles: P^T, dV += P^T dO, dP^T, dS^T, dK += dS^T Q
//   dq : per query tile, walk its key tiles: P, dP, dS, dQ += dS K
// Both recompute P (7 tile products instead of 5), but no atomics means deterministic
// gradients, and every intermediate stays in registers in the orientation its next product
// needs (no transpose through shared memory).
//
// Softmax runs in the log2 domain: s2 = (q.k) * scale * log2(e), lse2 = m2 + log2(l), so
// P = exp2(s2 - lse2). The forward saves lse2 per (batch, head, query).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "attention.hpp"
#include "attention_kernels.cuh"

namespace lcx::cuda {

namespace {

using namespace attnk;

// ------------------------------------------------------------------------------------------
// Tile products shared by the kernels. FULL = every slot of the virtual tile is computed: the
// loop is then branch-free, so the compiler can hoist the ldmatrix loads ahead of the mma's
// (with a per-slot branch each load/mma pair becomes its own basic block and its latency shows:
// run 2 measured dense 45% slower before this split).

// s (16 rows x 64 cols) = A (16 x D, registers) . B^T, B = 64 rows of a [n][k] tile.
template <int P, int KT, bool FULL>
__device__ __forceinline__ void prod_abt(float (&s)[8][4], const uint32_t (&af)[KT][4],
                                         const bf16* tile, int wb, int lane) {
#pragma unroll
  for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < KT; kk++)
#pragma unroll
    for (int jp = 0; jp < 4; jp++) {
      if (!FULL && !((wb >> jp) & 1)) continue;
      uint32_t bk[4];
      ldsm_x4(bk, bnk_addr<P>(tile, jp * 16, kk * 16, lane));
      mma16816(s[2 * jp], af[kk], bk[0], bk[1]);
      mma16816(s[2 * jp + 1], af[kk], bk[2], bk[3]);
    }
}
// acc (16 x D) += S (16 x 64, registers, rounded to bf16) . tile (64 x D, [k][n]).
template <int P, int NT, bool FULL>
__device__ __forceinline__ void prod_sv(float (&acc)[NT][4], const float (&s)[8][4],
                                        const bf16* tile, int wb, int lane) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) {
    if (!FULL && !((wb >> kk) & 1)) continue;
    uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                      pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                      pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
    for (int np = 0; np < NT / 2; np++) {
      uint32_t bv[4];
      ldsm_x4_t(bv, bkn_addr<P>(tile, kk * 16, np * 16, lane));
      mma16816(acc[2 * np], pa, bv[0], bv[1]);
      mma16816(acc[2 * np + 1], pa, bv[2], bv[3]);
    }
  }
}
// dq kernel: s = Q K^T and dp = dO V^T together (dO fragments from shared memory).
template <int P, int KT, bool FULL>
__device__ __forceinline__ void prod_s_dp(float (&s)[8][4], float (&dp)[8][4],
                                          const uint32_t (&qf)[KT][4], const bf16* sdO, int row0,
                                          const bf16* cK, const bf16* cV, int wb, int lane) {
#pragma unroll
  for (int j = 0; j < 8; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) s[j][i] = dp[j][i] = 0.f;
#pragma unroll
  for (int kk = 0; kk < KT; kk++) {
    uint32_t df[4];
    ldsm_x4(df, a_addr<P>(sdO, row0, kk * 16, lane));
#pragma unroll
    for (int jp = 0; jp < 4; jp++) {
      if (!FULL && !((wb >> jp) & 1)) continue;
      uint32_t bk[4], bv[4];
      ldsm_x4(bk, bnk_addr<P>(cK, jp * 16, kk * 16, lane));
      mma16816(s[2 * jp], qf[kk], bk[0], bk[1]);
      mma16816(s[2 * jp + 1], qf[kk], bk[2], bk[3]);
      ldsm_x4(bv, bnk_addr<P>(cV, jp * 16, kk * 16, lane));
      mma16816(dp[2 * jp], df, bv[0], bv[1]);
      mma16816(dp[2 * jp + 1], df, bv[2], bv[3]);
    }
  }
}
// dkv kernel, one 32-query half: s^T = K Q^T, dp^T = V dO^T (rows = the warp's 16 keys).
template <int P, int KT, bool FULL>
__device__ __forceinline__ void prod_st_dpt(float (&s)[4][4], float (&dp)[4][4], const bf16* sK,
                                            const bf16* sV, int row0, const bf16* cQ,
                                            const bf16* cdO, int qbase, int hb, int lane) {
#pragma unroll
  for (int j = 0; j < 4; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) s[j][i] = dp[j][i] = 0.f;
#pragma unroll
  for (int kk = 0; kk < KT; kk++) {
    uint32_t ka[4], va[4];
    ldsm_x4(ka, a_addr<P>(sK, row0, kk * 16, lane));
    ldsm_x4(va, a_addr<P>(sV, row0, kk * 16, lane));
#pragma unroll
    for (int jp = 0; jp < 2; jp++) {
      if (!FULL && !((hb >> jp) & 1)) continue;
      uint32_t bq[4], bo[4];
      ldsm_x4(bq, bnk_addr<P>(cQ, qbase + jp * 16, kk * 16, lane));
      mma16816(s[2 * jp], ka, bq[0], bq[1]);
      mma16816(s[2 * jp + 1], ka, bq[2], bq[3]);
      ldsm_x4(bo, bnk_addr<P>(cdO, qbase + jp * 16, kk * 16, lane));
      mma16816(dp[2 * jp], va, bo[0], bo[1]);
      mma16816(dp[2 * jp + 1], va, bo[2], bo[3]);
    }
  }
}
// dkv kernel, one half: dV += P^T dO and dK += dS^T Q (dO, Q stored [query][d] = [k][n]).
template <int P, int NT, bool FULL>
__device__ __forceinline__ void prod_dkv(float (&dv)[NT][4], float (&dk)[NT][4],
                                         const float (&s)[4][4], const float (&dp)[4][4],
                                         const bf16* cQ, const bf16* cdO, int qbase, int hb,
                                         int lane) {
#pragma unroll
  for (int kk = 0; kk < 2; kk++) {
    if (!FULL && !((hb >> kk) & 1)) continue;
    uint32_t pa[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),
                      pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                      pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
    uint32_t da[4] = {pack_bf16(dp[2 * kk][0], dp[2 * kk][1]), pack_bf16(dp[2 * kk][2], dp[2 * kk][3]),
                      pack_bf16(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                      pack_bf16(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
    for (int np = 0; np < NT / 2; np++) {
      uint32_t bo[4], bq[4];
      ldsm_x4_t(bo, bkn_addr<P>(cdO, qbase + kk * 16, np * 16, lane));
      mma16816(dv[2 * np], pa, bo[0], bo[1]);
      mma16816(dv[2 * np + 1], pa, bo[2], bo[3]);
      ldsm_x4_t(bq, bkn_addr<P>(cQ, qbase + kk * 16, np * 16, lane));
      mma16816(dk[2 * np], da, bq[0], bq[1]);
      mma16816(dk[2 * np + 1], da, bq[2], bq[3]);
    }
  }
}

// ------------------------------------------------------------------------------------------
// forward: O = softmax(Q K^T * scale) V over the allowed keys, and lse2 per query.
// A warp whose 4 slots are all live without element mask runs the whole tile (Q K^T, softmax,
// P V) as one branch-free block, so the scheduler can overlap V's ldmatrix with the softmax
// (run 3's kernel branched between softmax and P V, and on `masked` at every one of the 32
// elements: 1.9x slower, NOTES.md run 6). The branch-free block keeps more loads in flight: on sm_90 bound it to the
// CTAs per SM that shared memory allows there (4 at D <= 64, 3 at D = 96, 2 stages; 3 at
// D = 128 with one stage, which fwd_d picks there), i.e. to 128 / 168 registers, where it would
// otherwise lose a CTA (D = 128, one stage: 4 bytes spill, measured faster anyway). Other GPUs
// fit fewer CTAs; at D = 32 the bound only stops ptxas from choosing 96 registers and spilling
// (sm_80 / sm_89).
constexpr int fwd_min_ctas(int D, int STAGES) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return D <= 64 ? 4 : D == 96 ? 3 : STAGES == 1 ? 3 : 0;
#else
  return D == 32 ? 4 : 0;
#endif
}
template <int D, int STAGES>
__global__ void __launch_bounds__(NTHREADS, fwd_min_ctas(D, STAGES)) attn_fwd_kernel(const KParams p) {
  constexpr int P = D + 8, KT = D / 16, NT = D / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + TL * P;
  bf16* sV = sK + STAGES * TL * P;
  const AttnArgs& a = p.a;
  const Cta c = cta_here(p);
  const int qt = c.tile, h = c.h, b = c.b, tid = c.tid, warp = c.warp, lane = c.lane, g = c.g, t4 = c.t4;
  const int hl = c.hl, e0 = c.e0, e1 = c.e1;
  const bf16* qg = a.q + b * a.q_batch + h * D;
  const bf16* kg = a.k + b * a.kv_batch + h * D;
  const bf16* vg = a.v + b * a.kv_batch + h * D;
  const int32_t* seg = c.seg;
  const int q0 = qt * TL;

  load_tile<D>(sQ, qg, a.q_row, contiguous_blocks(qt), a.Tq, tid);
  cp_async_commit();
  prefetch_kv<D, STAGES>(sK, sV, kg, vg, p, e0, e1, tid);
  cp_async_commit();
  cp_async_wait<1>();
  __syncthreads();
  uint32_t qf[KT][4];
#pragma unroll
  for (int kk = 0; kk < KT; kk++) ldsm_x4(qf[kk], a_addr<P>(sQ, warp * 16, kk * 16, lane));

  float o[NT][4];
#pragma unroll
  for (int n = 0; n < NT; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  const float sl2 = p.scale_log2;
  for (int e = e0; e < e1; e++) {
    const int4 kb4 = p.blk[e];
    const int fl = p.flags[e];
    const int buf = stage_kv<D, STAGES>(sK, sV, kg, vg, p, e, e0, e1, kb4, tid);
    const bf16* cK = sK + buf * TL * P;
    const bf16* cV = sV + buf * TL * P;
    // This warp's 16 queries against the 4 gathered key blocks (warp-uniform).
    const int wb = (fl >> (warp * 4)) & 0xF;
    const bool elem = fl & kElem;
    auto tile = [&](auto full_tag) {
      constexpr bool FULL = decltype(full_tag)::value;
      float s[8][4];
      prod_abt<P, KT, FULL>(s, qf, cK, wb, lane);
      if (!FULL) fwd_mask(s, p, hl, e, wb, elem, q0 + warp * 16, g, t4, seg);
      fwd_online_softmax(s, o, m, l, sl2);
      prod_sv<P, NT, FULL>(o, s, cV, wb, lane);  // empty slots have P = 0 and are skipped
    };
    if (wb == 0xF && !elem)
      tile(std::true_type());
    else if (wb)
      tile(std::false_type());
    __syncthreads();
  }
  cp_async_wait<0>();

  fwd_store<D>(a, o, m, l, b, h, q0 + warp * 16, g, t4);
}

// ------------------------------------------------------------------------------------------
// dvec[b,h,q] = sum_d dO * O (the D term of FA2's backward); one warp per (b, q, h).
template <int D>
__global__ void attn_dvec_kernel(const AttnArgs a) {
  const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (w >= (long long)a.B * a.Tq * a.NH) return;
  const int h = (int)(w % a.NH);
  const long long bt = w / a.NH;
  const int t = (int)(bt % a.Tq), b = (int)(bt / a.Tq);
  const bf16* o = a.o + b * a.o_batch + (long long)t * a.o_row + h * D;
  const bf16* d = a.dout + b * a.o_batch + (long long)t * a.o_row + h * D;
  float acc = 0.f;
  for (int i = lane * 2; i < D; i += 64) {
    const float2 of = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(o + i));
    const float2 df = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(d + i));
    acc += of.x * df.x + of.y * df.y;
  }
  acc = warp_sum(acc);
  if (lane == 0) a.dvec[((long long)b * a.NH + h) * a.Tq + t] = acc;
}

// ------------------------------------------------------------------------------------------
// dq: per query tile. P = exp2(s2 - lse2), dP = dO V^T, dS = P (dP - dvec), dQ = scale dS K.
// As in the forward, a full warp-tile is one branch-free block.
template <int D, int STAGES>
__global__ void __launch_bounds__(NTHREADS) attn_dq_kernel(const KParams p) {
  constexpr int P = D + 8, KT = D / 16, NT = D / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sdO = sQ + TL * P;
  bf16* sK = sdO + TL * P;
  bf16* sV = sK + STAGES * TL * P;
  const AttnArgs& a = p.a;
  const Cta c = cta_here(p);
  const int qt = c.tile, h = c.h, b = c.b, tid = c.tid, warp = c.warp, lane = c.lane, g = c.g, t4 = c.t4;
  const int hl = c.hl, e0 = c.e0, e1 = c.e1;
  const bf16* qg = a.q + b * a.q_batch + h * D;
  const bf16* kg = a.k + b * a.kv_batch + h * D;
  const bf16* vg = a.v + b * a.kv_batch + h * D;
  const bf16* dog = a.dout + b * a.o_batch + h * D;
  const int32_t* seg = c.seg;
  const int q0 = qt * TL;

  load_tile<D>(sQ, qg, a.q_row, contiguous_blocks(qt), a.Tq, tid);
  load_tile<D>(sdO, dog, a.o_row, contiguous_blocks(qt), a.Tq, tid);
  cp_async_commit();
  prefetch_kv<D, STAGES>(sK, sV, kg, vg, p, e0, e1, tid);
  cp_async_commit();

  float lse[2], dvr[2];
  dq_row_stats(a, b, h, q0 + warp * 16, g, lse, dvr);
  cp_async_wait<1>();
  __syncthreads();
  uint32_t qf[KT][4];
#pragma unroll
  for (int kk = 0; kk < KT; kk++) ldsm_x4(qf[kk], a_addr<P>(sQ, warp * 16, kk * 16, lane));

  float dq[NT][4];
#pragma unroll
  for (int n = 0; n < NT; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

  for (int e = e0; e < e1; e++) {
    const int4 kb4 = p.blk[e];
    const int fl = p.flags[e];
    const int buf = stage_kv<D, STAGES>(sK, sV, kg, vg, p, e, e0, e1, kb4, tid);
    const bf16* cK = sK + buf * TL * P;
    const bf16* cV = sV + buf * TL * P;
    const int wb = (fl >> (warp * 4)) & 0xF;
    const bool elem = fl & kElem;
    auto tile = [&](auto full_tag) {
      constexpr bool FULL = decltype(full_tag)::value;
      float s[8][4], dp[8][4];
      prod_s_dp<P, KT, FULL>(s, dp, qf, sdO, warp * 16, cK, cV, wb, lane);
      dq_ds<FULL>(s, dp, p, hl, e, wb, elem, q0 + warp * 16, g, t4, lse, dvr, seg);
      prod_sv<P, NT, FULL>(dq, s, cK, wb, lane);  // dQ += dS K (K stored [key][d] = [k][n])
    };
    if (wb == 0xF && !elem)
      tile(std::true_type());
    else if (wb)
      tile(std::false_type());
    __syncthreads();
  }
  cp_async_wait<0>();

  dq_store<D>(a, dq, p.scale, b, h, q0 + warp * 16, g, t4);
}

// ------------------------------------------------------------------------------------------
// dkv: per group of 4 key blocks (warp w owns block w, 16 keys). Works on 32-query halves of
// each gathered query tile to keep the two accumulators (dK, dV: 2 x D/2 registers per lane)
// plus S^T/dP^T within 255 registers. As in the forward, a full warp-half is one branch-free
// block.
template <int D, int STAGES>
__global__ void __launch_bounds__(NTHREADS) attn_dkv_kernel(const KParams p) {
  constexpr int P = D + 8, KT = D / 16, NT = D / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* sK = reinterpret_cast<bf16*>(smem);
  bf16* sV = sK + TL * P;
  bf16* sQ = sV + TL * P;
  bf16* sdO = sQ + STAGES * TL * P;
  float* sL = reinterpret_cast<float*>(sdO + STAGES * TL * P);
  float* sDv = sL + STAGES * TL;
  const AttnArgs& a = p.a;
  const Cta c = cta_here(p);
  const int h = c.h, b = c.b, tid = c.tid, warp = c.warp, lane = c.lane, g = c.g, t4 = c.t4;
  const int hl = c.hl, li = c.li, e0 = c.e0, e1 = c.e1;
  const int4 kb4 = p.gblk[li];
  const int my_kb = comp(kb4, warp);
  const bf16* qg = a.q + b * a.q_batch + h * D;
  const bf16* kg = a.k + b * a.kv_batch + h * D;
  const bf16* vg = a.v + b * a.kv_batch + h * D;
  const bf16* dog = a.dout + b * a.o_batch + h * D;
  const float* lseg = a.lse + ((long long)b * a.NH + h) * a.Tq;
  const float* dvg = a.dvec + ((long long)b * a.NH + h) * a.Tq;
  const int32_t* seg = c.seg;

  auto load_q = [&](int stage, int4 qb4) {
    load_tile<D>(sQ + stage * TL * P, qg, a.q_row, qb4, a.Tq, tid);
    load_tile<D>(sdO + stage * TL * P, dog, a.o_row, qb4, a.Tq, tid);
    load_vec64(sL + stage * TL, lseg, qb4, a.Tq, tid);
    load_vec64(sDv + stage * TL, dvg, qb4, a.Tq, tid);
  };

  load_tile<D>(sK, kg, a.kv_row, kb4, a.Tk, tid);
  load_tile<D>(sV, vg, a.kv_row, kb4, a.Tk, tid);
  cp_async_commit();
  if (STAGES == 2 && e1 > e0) load_q(0, p.blk[e0]);
  cp_async_commit();

  float dk[NT][4], dv[NT][4];
#pragma unroll
  for (int n = 0; n < NT; n++)
#pragma unroll
    for (int i = 0; i < 4; i++) dk[n][i] = dv[n][i] = 0.f;

  for (int e = e0; e < e1; e++) {
    const int fl = p.flags[e];
    const int buf = stage_q<STAGES, false>(p, e, e0, e1, load_q);
    const bf16* cQ = sQ + buf * TL * P;
    const bf16* cdO = sdO + buf * TL * P;
    const float* cL = sL + buf * TL;
    const float* cDv = sDv + buf * TL;
    const bool elem = fl & kElem;
    const int wb = (fl >> (warp * 4)) & 0xF;  // which of the 4 query blocks see my key block

#pragma unroll
    for (int half = 0; half < 2; half++) {
      const int hb = (wb >> (2 * half)) & 3;
      const int qbase = half * 32;
      auto half_tile = [&](auto full_tag) {
        constexpr bool FULL = decltype(full_tag)::value;
        float s[4][4], dp[4][4];
        prod_st_dpt<P, KT, FULL>(s, dp, sK, sV, warp * 16, cQ, cdO, qbase, hb, lane);
        dkv_ps<4, FULL>(s, dp, p, hl, e, hb, elem, qbase, my_kb * KB, g, t4, cL, cDv, seg);
        prod_dkv<P, NT, FULL>(dv, dk, s, dp, cQ, cdO, qbase, hb, lane);  // dV += P^T dO, dK += dS^T Q
      };
      if (hb == 3 && !elem)
        half_tile(std::true_type());
      else if (hb)
        half_tile(std::false_type());
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  dkv_store<D>(a, dk, dv, p.scale, b, h, my_kb < 0 ? -1 : my_kb * KB, g, t4);
}

// ------------------------------------------------------------------------------------------
size_t fwd_smem(int D, int stages) { return (size_t)(1 + 2 * stages) * TL * (D + 8) * 2; }
size_t dq_smem(int D, int stages) { return (size_t)(2 + 2 * stages) * TL * (D + 8) * 2; }
size_t dkv_smem(int D, int stages) {
  return (size_t)(2 + 2 * stages) * TL * (D + 8) * 2 + (size_t)2 * stages * TL * 4;
}

int device_attr(cudaDeviceAttr what) {
  int dev = 0, v = 0;
  LCX_CUDA_CHECK(cudaGetDevice(&dev));
  LCX_CUDA_CHECK(cudaDeviceGetAttribute(&v, what, dev));
  return v;
}
int max_smem_optin() {
  static const int v = device_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  return v;
}
int cc_major() {
  static const int v = device_attr(cudaDevAttrComputeCapabilityMajor);
  return v;
}

// The wgmma kernels on sm_90: LCX_ATTN_WGMMA=0 at start or attention_set_wgmma(false) turns them off.
bool& wgmma_flag() {
  static bool on = attn_env_digit("LCX_ATTN_WGMMA", 1) != 0;
  return on;
}
// Hopper with this build's sm_90a kernels (attention_sm90a.cu), head dims 64 and 128.
bool wgmma_here(int D) {
#ifdef LCX_HAVE_SM90A
  return (D == 64 || D == 128) && wgmma_flag() && cc_major() == 9;
#else
  (void)D;
  return false;
#endif
}

template <class K>
void launch(K kernel, dim3 grid, size_t smem, const KParams& p, cudaStream_t stream) {
  // Raising the dynamic shared memory limit is per kernel and cheap; doing it every launch
  // keeps this stateless across devices.
  LCX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  kernel<<<grid, NTHREADS, smem, stream>>>(p);
  LCX_LAUNCH_CHECK();
}

KParams make_params(const AttnArgs& a, const AttnPattern& pat, const AttnPlan& plan) {
  KParams p{};
  p.a = a;
  p.kind = pat.kind;
  p.window = pat.window;
  p.nb = pat.nb;
  p.block = pat.block;
  p.layout_heads = plan.layout_heads;
  p.layout = pat.layout_dev;
  p.scale = 1.0f / std::sqrt((float)a.HS);
  p.scale_log2 = p.scale * 1.4426950408889634f;
  // LCX_ATTN_LAYOUT_READS=1 (read once): masked entries read the layout per element as before
  // run 15, for A/B runs.
  static const bool layout_reads = attn_env_digit("LCX_ATTN_LAYOUT_READS", 0) == 1;
  // A query sub-block lies inside one layout block when the block and the queries' offset are
  // multiples of 16 (prefill against a cache in 7-token passes is not).
  p.pair_bits_exact = !layout_reads && (pat.kind != LCX_ATTN_SPARSE ||
                                        (pat.block % kAttnBlock == 0 && a.q_offset % kAttnBlock == 0));
  // The wgmma kernels store 16-byte pieces when every output row starts 16-byte aligned;
  // LCX_ATTN_DIRECT_STORES=1 (read once) keeps the accumulator's 4-byte stores, for A/B runs.
  static const bool direct_stores = attn_env_digit("LCX_ATTN_DIRECT_STORES", 0) == 1;
  const auto rows_aligned = [](const void* base, long long row, long long batch) {
    return reinterpret_cast<uintptr_t>(base) % 16 == 0 && row % 8 == 0 && batch % 8 == 0;
  };
  p.staged_stores = !direct_stores && a.HS % 8 == 0 && rows_aligned(a.o, a.o_row, a.o_batch) &&
                    (!a.dq || rows_aligned(a.dq, a.dq_row, a.dq_batch)) &&
                    (!a.dk || (rows_aligned(a.dk, a.dkv_row, a.dkv_batch) && rows_aligned(a.dv, a.dkv_row, a.dkv_batch)));
  return p;
}

// The grid of a tile kernel: heads, batch rows, then tiles (cta_here says why).
dim3 attn_grid(const KParams& p, int ntiles) {
  if (ntiles > 65535 || p.a.B > 65535)
    fail(LCX_ERR_UNSUPPORTED, "CUDA attention: %d tiles of 64 tokens or %d batch rows exceed the grid's 65535",
         ntiles, p.a.B);
  return dim3(p.a.NH, p.a.B, ntiles);
}

void set_fwd_lists(KParams& p, const AttnPlan& plan) {
  p.off = plan.d[kFwdOff];
  p.blk = reinterpret_cast<const int4*>(plan.d[kFwdBlk]);
  p.flags = plan.d[kFwdFlags];
  p.ntiles = plan.nqt;
}

template <int D>
void fwd_d(const KParams& p0, const AttnPlan& plan, cudaStream_t s) {
  KParams p = p0;
  set_fwd_lists(p, plan);
  const dim3 grid = attn_grid(p, plan.nqt);
  // At D = 128 on sm_90 one stage: its instance is held to 168 registers (fwd_min_ctas), so
  // three CTAs fit per SM instead of two, and 12 warps hide more latency than the next tile's
  // prefetch did (run 9: 1.432 -> 1.241 ms at T = 8192; ncu had shown 2 CTAs of 4 warps per
  // SM, latency-bound). Elsewhere two stages when shared memory allows. LCX_ATTN_FWD_STAGES=1|2
  // overrides (read once).
  static const int forced = [] {
    const int v = attn_env_digit("LCX_ATTN_FWD_STAGES", 0);
    return v == 1 || v == 2 ? v : 0;
  }();
  if (wgmma_here(D) && fwd_wgmma(p, D, grid, s)) return;
  const bool one_stage = forced ? forced == 1 : D == 128 && cc_major() == 9;
  if (!one_stage && (int)fwd_smem(D, 2) <= max_smem_optin())
    launch(attn_fwd_kernel<D, 2>, grid, fwd_smem(D, 2), p, s);
  else
    launch(attn_fwd_kernel<D, 1>, grid, fwd_smem(D, 1), p, s);
}

template <int D>
void bwd_d(const KParams& p0, const AttnPlan& plan, cudaStream_t s) {
  const AttnArgs& a = p0.a;
  KParams p = p0;
  set_fwd_lists(p, plan);
  const dim3 gq = attn_grid(p, plan.nqt);
  const bool wg = wgmma_here(D);
  // The wgmma dq computes dvec for its rows itself and writes it for dkv (one pass less over O
  // and dO: NOTES.md run 15); the mma.sync one reads it from the dvec kernel.
  if (wg && dq_wgmma(p, D, gq, s)) {
  } else {
    const long long warps = (long long)a.B * a.Tq * a.NH;
    attn_dvec_kernel<D><<<ceil_div(warps, 8), 256, 0, s>>>(a);
    LCX_LAUNCH_CHECK();
    if ((int)dq_smem(D, 2) <= max_smem_optin())
      launch(attn_dq_kernel<D, 2>, gq, dq_smem(D, 2), p, s);
    else
      launch(attn_dq_kernel<D, 1>, gq, dq_smem(D, 1), p, s);
  }
  p.off = plan.d[kBwdOff];
  p.blk = reinterpret_cast<const int4*>(plan.d[kBwdBlk]);
  p.flags = plan.d[kBwdFlags];
  p.gblk = reinterpret_cast<const int4*>(plan.d[kGrpBlk]);
  p.ntiles = plan.ngroups;
  const dim3 gk = attn_grid(p, plan.ngroups);
  if (wg && dkv_wgmma(p, D, gk, s)) {
  } else if ((int)dkv_smem(D, 2) <= max_smem_optin())
    launch(attn_dkv_kernel<D, 2>, gk, dkv_smem(D, 2), p, s);
  else
    launch(attn_dkv_kernel<D, 1>, gk, dkv_smem(D, 1), p, s);
}

}  // namespace

void attention_set_wgmma(bool on) { wgmma_flag() = on; }

bool attention_wgmma_active(int hs) { return wgmma_here(hs); }

bool attention_head_dim_supported(int hs) { return hs == 32 || hs == 64 || hs == 96 || hs == 128; }

void attention_forward(const AttnArgs& a, const AttnPattern& pat, const AttnPlan& plan,
                       cudaStream_t stream) {
  if (a.B == 0 || a.Tq == 0) return;
  const KParams p = make_params(a, pat, plan);
  switch (a.HS) {
    case 32: fwd_d<32>(p, plan, stream); break;
    case 64: fwd_d<64>(p, plan, stream); break;
    case 96: fwd_d<96>(p, plan, stream); break;
    case 128: fwd_d<128>(p, plan, stream); break;
    default: fail(LCX_ERR_UNSUPPORTED, "CUDA attention: head size %d is not supported (32, 64, 96, 128)", a.HS);
  }
}

void attention_backward(const AttnArgs& a, const AttnPattern& pat, const AttnPlan& plan,
                        cudaStream_t stream) {
  if (a.B == 0 || a.Tq == 0) return;
  if (!plan.has_backward || !plan.d[kBwdOff])
    fail(LCX_ERR_INTERNAL, "attention_backward: plan built without backward lists");
  const KParams p = make_params(a, pat, plan);
  switch (a.HS) {
    case 32: bwd_d<32>(p, plan, stream); break;
    case 64: bwd_d<64>(p, plan, stream); break;
    case 96: bwd_d<96>(p, plan, stream); break;
    case 128: bwd_d<128>(p, plan, stream); break;
    default: fail(LCX_ERR_UNSUPPORTED, "CUDA attention: head size %d is not supported (32, 64, 96, 128)", a.HS);
  }
}

}  // namespace lcx::cuda
