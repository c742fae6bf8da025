// Device pieces shared by the attention kernels (attention.cu: mma.sync; attention_sm90a.cu:
// Hopper wgmma): the kernel parameters, tile loading through cp.async, the pattern predicate,
// the forward's online softmax and output store, the backward's element-wise P / dS. The wgmma
// backward kernels overlap that element-wise work with products still in flight, so the P / dS
// helpers come split at the point where the next product's result is needed; the fused helpers
// attention.cu uses run the two parts back to back.
#pragma once
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "attention.hpp"
#include "common.cuh"
#include "longctx.h"

namespace lcx::cuda::attnk {

constexpr int TL = kAttnTile;  // 64 rows per tile
constexpr int NTHREADS = 128;

struct KParams {
  AttnArgs a;
  int kind, window, nb, block, layout_heads;
  const uint8_t* layout;
  const int* off;     // CSR offsets of the entries of each CTA's list
  const int4* blk;    // per entry: the 4 gathered blocks of the other side (-1 = empty)
  const int* flags;   // per entry: 16-bit pair mask | kElem
  const int4* gblk;   // dkv: the 4 key blocks of each group
  int ntiles;         // query tiles (fwd, dq) or key groups (dkv) per (batch, layout head)
  float scale_log2, scale;
  bool pair_bits_exact;  // the pair bits decide the layout: masked entries skip its reads (keep_mask)
  bool staged_stores;    // outputs aligned for store_rows_staged (the wgmma kernels use it then)
};

constexpr int kElem = 1 << 16;
constexpr int KB = kAttnBlock;

__device__ __forceinline__ int comp(const int4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Fragment addressing (lane = 0..31), for a 16 x 16 block at (r0, c0) of a tile with pitch P:
//  A operand (rows = M, cols = K), row-major storage: ldsm_x4 at row r0 + (lane & 15),
//    col c0 + (lane >> 4) * 8.
//  B operand for two n8 tiles, storage [n][k]: ldsm_x4 at row n0 + (lane & 7) + (lane >> 4) * 8,
//    col k0 + ((lane >> 3) & 1) * 8  -> {b0,b1} of tile n0, {b0,b1} of tile n0 + 8.
//  B operand for two n8 tiles, storage [k][n]: ldsm_x4_t at row k0 + (lane & 7) +
//    ((lane >> 3) & 1) * 8, col n0 + (lane >> 4) * 8 -> same register order.
template <int P>
__device__ __forceinline__ const bf16* a_addr(const bf16* tile, int r0, int c0, int lane) {
  return tile + (r0 + (lane & 15)) * P + c0 + (lane >> 4) * 8;
}
template <int P>
__device__ __forceinline__ const bf16* bnk_addr(const bf16* tile, int n0, int k0, int lane) {
  return tile + (n0 + (lane & 7) + (lane >> 4) * 8) * P + k0 + ((lane >> 3) & 1) * 8;
}
template <int P>
__device__ __forceinline__ const bf16* bkn_addr(const bf16* tile, int k0, int n0, int lane) {
  return tile + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * P + n0 + (lane >> 4) * 8;
}

// 64 rows x D columns from global (row stride in elements) into a tile, gathered from 4 blocks
// of 16 rows (blk, -1 = empty); rows outside [0, limit) or of empty blocks are zero-filled
// (their source address is clamped to row 0, never read).
// Two shared layouts: padded rows of D + 8 elements (ldmatrix; the pad puts ldmatrix's 8 row
// addresses in distinct banks), or SWZ: wgmma's 128-byte swizzle, D / 64 column panels of
// 64 rows x 128 bytes, the 16-byte chunk c of row r stored at chunk c ^ (r & 7) (the panels
// must start 1024-byte aligned).
//
// A compile-time trip count: each thread keeps one column and steps by whole rows, so the block
// of every chunk is known at compile time; a tile of 4 contiguous blocks inside [0, limit)
// (every dense tile, most window / document tiles) is a plain run of rows: one pointer add per
// chunk, no checks (~3 SASS per chunk). Run 3's loader (playground/attention_v3.cu.txt) paid a
// run-time trip count, a 4-way block select, div/mod and a 64-bit multiply per chunk (~35 SASS).
constexpr int floor_pow2(int n) { return n < 2 ? n : 2 * floor_pow2(n / 2); }
__device__ __forceinline__ bool blocks_contiguous(int4 blk, int limit) {
  return blk.x >= 0 && blk.y == blk.x + 1 && blk.z == blk.x + 2 && blk.w == blk.x + 3 &&
         (blk.x + 4) * KB <= limit;
}
template <int D, bool SWZ = false>
__device__ __forceinline__ void load_tile(bf16* s, const bf16* g, long long row_stride, int4 blk,
                                          int limit, int tid) {
  constexpr int CPR = D / 8;  // 16-byte chunks per row
  // Each loading thread keeps one 16-byte column and steps down RPI rows per pass; RPI is a
  // power of two, so the block of every chunk is known at compile time (at D = 96 the last
  // 32 threads do not load).
  constexpr int RPI = floor_pow2(NTHREADS / CPR), PASSES = TL / RPI;
  // Row pitch in elements: swizzled rows are 128 bytes; RPI is a multiple of 8 there, so every
  // row a thread visits has the same r & 7 and its swizzled chunk stays put.
  constexpr int RP = SWZ ? 64 : D + 8;
  static_assert(!SWZ || (D % 64 == 0 && RPI % 8 == 0), "swizzled tiles: D multiple of 64");
  if (RPI * CPR < NTHREADS && tid >= RPI * CPR) return;
  const int r0 = tid / CPR, c = tid % CPR, col = c * 8;
  bf16* dst = SWZ ? s + (c >> 3) * TL * 64 + r0 * 64 + (((c & 7) ^ (r0 & 7)) << 3) : s + r0 * RP + col;
  if (blocks_contiguous(blk, limit)) {
    const bf16* src = g + (long long)(blk.x * KB + r0) * row_stride + col;
#pragma unroll
    for (int i = 0; i < PASSES; i++)
      cp_async16(dst + i * RPI * RP, src + (long long)(i * RPI) * row_stride, 16);
  } else {
#pragma unroll
    for (int i = 0; i < PASSES; i++) {
      // Row r0 + i * RPI: its block is i * RPI / KB (+ r0 / KB when a pass spans blocks).
      const int slot = i * RPI / KB + (RPI > KB ? r0 / KB : 0);
      const int rr = (RPI > KB ? r0 % KB : r0) + (i * RPI) % KB;
      const int b = comp(blk, slot), gr = b * KB + rr;
      const bool ok = b >= 0 && gr < limit;
      cp_async16(dst + i * RPI * RP, g + (long long)(ok ? gr : 0) * row_stride + col, ok ? 16 : 0);
    }
  }
}
__device__ __forceinline__ int4 contiguous_blocks(int tile) {
  return make_int4(tile * 4, tile * 4 + 1, tile * 4 + 2, tile * 4 + 3);
}
__device__ __forceinline__ void load_vec64(float* s, const float* g, int4 blk, int limit, int tid) {
  if (tid < TL) {
    if (blocks_contiguous(blk, limit)) {
      cp_async4(s + tid, g + blk.x * KB + tid, 4);
      return;
    }
    const int b = comp(blk, tid / KB), gr = b * KB + (tid % KB);
    const bool ok = b >= 0 && gr < limit;
    cp_async4(s + tid, g + (ok ? gr : 0), ok ? 4 : 0);
  }
}

// Orders this thread's generic-proxy writes to shared memory (cp.async, st.shared) before the
// async proxy's reads (wgmma operands) that follow a barrier.
__device__ __forceinline__ void fence_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// Before the fwd / dq loop with 2 stages: the first entry's K and V tiles, which stage_kv then
// waits for (its own loads always fetch the next entry).
template <int D, int STAGES, bool SWZ = false>
__device__ __forceinline__ void prefetch_kv(bf16* sK, bf16* sV, const bf16* kg, const bf16* vg,
                                            const KParams& p, int e0, int e1, int tid) {
  if (STAGES == 2 && e1 > e0) {
    load_tile<D, SWZ>(sK, kg, p.a.kv_row, p.blk[e0], p.a.Tk, tid);
    load_tile<D, SWZ>(sV, vg, p.a.kv_row, p.blk[e0], p.a.Tk, tid);
  }
}

// One step of the fwd / dq loop over key tiles: with 2 stages, start loading the next entry's
// K and V tiles into the other buffer and wait for this entry's (loaded one step earlier);
// with 1 stage, load this entry's. Returns the buffer that holds entry e. SWZ tiles are read
// by wgmma (the async proxy): each thread fences its cp.async writes before the barrier.
template <int D, int STAGES, bool SWZ = false>
__device__ __forceinline__ int stage_kv(bf16* sK, bf16* sV, const bf16* kg, const bf16* vg,
                                        const KParams& p, int e, int e0, int e1, int4 kb4, int tid) {
  constexpr int TS = TL * (SWZ ? D : D + 8);  // tile size in elements
  const AttnArgs& a = p.a;
  int buf = 0;
  if (STAGES == 2) {
    buf = (e - e0) & 1;
    if (e + 1 < e1) {
      // One read of the entry for both tiles (the cp.async asm makes the compiler reload it).
      const int4 nb4 = p.blk[e + 1];
      load_tile<D, SWZ>(sK + (buf ^ 1) * TS, kg, a.kv_row, nb4, a.Tk, tid);
      load_tile<D, SWZ>(sV + (buf ^ 1) * TS, vg, a.kv_row, nb4, a.Tk, tid);
    }
    cp_async_commit();
    cp_async_wait<1>();
  } else {
    load_tile<D, SWZ>(sK, kg, a.kv_row, kb4, a.Tk, tid);
    load_tile<D, SWZ>(sV, vg, a.kv_row, kb4, a.Tk, tid);
    cp_async_commit();
    cp_async_wait<0>();
  }
  if (SWZ) fence_async_smem();
  __syncthreads();
  return buf;
}

// Where a CTA stands: its tile (a query tile for fwd / dq, a key group for dkv), head and batch
// row, its lane roles, and its entries [e0, e1) of the plan. The grid runs the tiles last first:
// late query tiles see the most keys and the groups are sorted shortest first, so the last wave
// is short. The grid is (NH, B, tiles): blocks start in order of their linear index (x
// fastest), so the k-th heaviest tiles of every head and batch row start together, a
// longest-first order over the whole grid. With the tile index in x (runs 1-12), head 15's
// heaviest tiles started only after heads 0..14 had all been dispatched and ran on into a tail.
// Every index is read from a special register, so none holds a register (dkv<128> has none to
// spare).
struct Cta {
  int tile, h, b, tid, warp, lane, g, t4, hl, e0, e1;
  int li;              // the tile's list index in the plan
  const int32_t* seg;  // the batch row's segment ids, or nullptr
};
__device__ __forceinline__ Cta cta_here(const KParams& p) {
  Cta c;
  c.tile = gridDim.z - 1 - blockIdx.z;
  c.h = blockIdx.x;
  c.b = blockIdx.y;
  c.tid = threadIdx.x;
  c.warp = c.tid >> 5;
  c.lane = c.tid & 31;
  c.g = c.lane >> 2;
  c.t4 = c.lane & 3;
  c.hl = p.layout_heads > 1 ? c.h : 0;
  c.li = (c.b * p.layout_heads + c.hl) * p.ntiles + c.tile;
  c.e0 = p.off[c.li];
  c.e1 = p.off[c.li + 1];
  c.seg = p.a.seg ? p.a.seg + c.b * p.a.seg_batch : nullptr;
  return c;
}

// dkv's counterpart of stage_kv over its query tiles: Q and dO of entry e (or, with 2 stages,
// of e + 1 into the other buffer, e's having been loaded one step earlier), with their lse2 and
// dvec; load(stage, blocks) issues the copies. Returns the buffer that holds entry e.
template <int STAGES, bool SWZ, class Load>
__device__ __forceinline__ int stage_q(const KParams& p, int e, int e0, int e1, Load&& load) {
  int buf = 0;
  if (STAGES == 2) {
    buf = (e - e0) & 1;
    if (e + 1 < e1) load(buf ^ 1, p.blk[e + 1]);
    cp_async_commit();
    cp_async_wait<1>();
  } else {
    load(0, p.blk[e]);
    cp_async_commit();
    cp_async_wait<0>();
  }
  if (SWZ) fence_async_smem();
  __syncthreads();
  return buf;
}

// The reference predicate (lcx::attends) for query index qi of the plan (absolute position
// q_offset + qi) and key position k.
__device__ __forceinline__ bool allowed(const KParams& p, int hl, int qi, int k,
                                        const int32_t* seg) {
  if (qi >= p.a.Tq || k >= p.a.Tk) return false;
  const int q = p.a.q_offset + qi;
  if (k > q) return false;
  if (seg && seg[k] != seg[q]) return false;
  if (p.kind == LCX_ATTN_WINDOW) return q - k < p.window;
  if (p.kind == LCX_ATTN_SPARSE)
    return p.layout[((size_t)hl * p.nb + q / p.block) * p.nb + k / p.block] != 0;
  return true;
}

// Whether element (j, i) of a thread's accumulator is kept by a keep_mask.
__device__ __forceinline__ bool kept(uint32_t keep, int j, int i) { return (keep >> (4 * j + i)) & 1; }

// Which of a thread's 4 J accumulator elements of entry e the pattern keeps: bit 4 j + i.
// One side of the pair is fixed per thread, rows fixed0 + g and fixed0 + g + 8 (element i holds
// row i >> 1): the query rows in fwd / dq (FIXED_Q), the key rows in dkv. The other side varies
// with column 8 j + 2 t4 + (i & 1) of the entry's gathered tile, from row vbase (a multiple of
// 16) on. bits: which of the varying side's 16-row blocks (from vbase) the fixed rows may see.
// Whole blocks come from the pair bits; with the element flag every kept element also gets the
// predicate. When the pair bits already decide the layout (p.pair_bits_exact: every pattern but
// a sparse one whose block or query offset is not a multiple of 16; a 16 x 16 sub-block then
// lies inside one layout block) the predicate is causal order, bounds, window and segments: a
// few compares per element, once per entry. lcx::attends per element (`allowed`: a layout read
// behind a branch) made a masked entry cost ~4x a plain one, 29-36% of the sparse layer's
// kernel time (NOTES.md run 15).
template <int J, bool FIXED_Q>
__device__ __forceinline__ uint32_t keep_mask(const KParams& p, int hl, int e, int bits, bool elem,
                                              int fixed0, int vbase, int g, int t4,
                                              const int32_t* seg) {
  static_assert(J <= 8, "32 elements at most");
  uint32_t keep = 0;
#pragma unroll
  for (int j = 0; j < J; j++)
    if ((bits >> (j >> 1)) & 1) keep |= 0xFu << (4 * j);
  if (!elem) return keep;
  const AttnArgs& a = p.a;
  const int4 vb4 = p.blk[e];
  if (!p.pair_bits_exact) {
#pragma unroll
    for (int j = 0; j < J; j++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int f = fixed0 + g + (i >> 1) * 8;
        const int v = comp(vb4, (vbase >> 4) + (j >> 1)) * KB + (j & 1) * 8 + 2 * t4 + (i & 1);
        if (kept(keep, j, i) && !(FIXED_Q ? allowed(p, hl, f, v, seg) : allowed(p, hl, v, f, seg)))
          keep &= ~(1u << (4 * j + i));
      }
    return keep;
  }
  const int win = p.kind == LCX_ATTN_WINDOW ? p.window : 0x7fffffff;
  // Positions (keys absolute, queries q_offset + index), validity and segment ids.
  int fpos[2], fseg[2];
  bool fok[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int f = fixed0 + g + r * 8;
    fok[r] = FIXED_Q ? f < a.Tq : f < a.Tk;
    fpos[r] = FIXED_Q ? a.q_offset + f : f;
    fseg[r] = seg && fok[r] && fpos[r] < a.Tk ? seg[fpos[r]] : 0;
  }
#pragma unroll
  for (int j = 0; j < J; j++) {
    if (!((bits >> (j >> 1)) & 1)) continue;
    const int v0 = comp(vb4, (vbase >> 4) + (j >> 1)) * KB + (j & 1) * 8 + 2 * t4;
#pragma unroll
    for (int c = 0; c < 2; c++) {
      const int v = v0 + c;
      const bool vok = FIXED_Q ? v < a.Tk : v < a.Tq;
      const int vpos = FIXED_Q ? v : a.q_offset + v;
      const int vseg = seg && vok && vpos < a.Tk ? seg[vpos] : 0;
#pragma unroll
      for (int r = 0; r < 2; r++) {
        const int q = FIXED_Q ? fpos[r] : vpos, k = FIXED_Q ? vpos : fpos[r];
        if (!(vok && fok[r] && k <= q && q - k < win && vseg == fseg[r])) keep &= ~(1u << (4 * j + 2 * r + c));
      }
    }
  }
  return keep;
}

__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// ------------------------------------------------------------------------------------------
// Forward pieces. Both kernels hold a warp's 16 query rows in the m16n8 accumulator layout
// (mma.sync's, and wgmma's per warp of the warpgroup): thread (g = lane / 4, t4 = lane % 4)
// holds rows g and g + 8, columns 8 j + 2 t4 + {0, 1} of every n8 block j.

// Scores of the 4 key blocks of entry e that this warp's rows may not see become -inf: whole
// blocks whose pair bit (wb) is clear, and with the element flag, every pair the predicate
// rejects (row0 = the warp's first query index).
__device__ __forceinline__ void fwd_mask(float (&s)[8][4], const KParams& p, int hl, int e, int wb,
                                         bool elem, int row0, int g, int t4, const int32_t* seg) {
  const uint32_t keep = keep_mask<8, true>(p, hl, e, wb, elem, row0, 0, g, t4, seg);
#pragma unroll
  for (int j = 0; j < 8; j++)
#pragma unroll
    for (int i = 0; i < 4; i++)
      if (!kept(keep, j, i)) s[j][i] = -INFINITY;
}

// Online softmax of one tile's raw scores s (q.k, masked entries -inf) into m, l, o (log2
// domain); s becomes P. The scale is applied inside exp2's argument as one FFMA per score
// (the max commutes with a positive scale): run 7's ncu counted ~122M unfused FP32
// instructions per call when the scores were scaled first. Each row lives in one quad of
// lanes (same g); l is a per-lane partial, summed over the quad by fwd_store.
template <int NT>
__device__ __forceinline__ void fwd_online_softmax(float (&s)[8][4], float (&o)[NT][4], float (&m)[2],
                                                   float (&l)[2], float sl2) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < 8; j++) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
    mx = quad_max(mx) * sl2;
    const float m_new = fmaxf(m[r], mx);
    const float m_use = m_new == -INFINITY ? 0.f : m_new;  // fully masked so far: no NaN
    const float alpha = exp2f(m[r] - m_use);
    float rs = 0.f;
#pragma unroll
    for (int j = 0; j < 8; j++) {
      s[j][2 * r] = exp2f(fmaf(s[j][2 * r], sl2, -m_use));
      s[j][2 * r + 1] = exp2f(fmaf(s[j][2 * r + 1], sl2, -m_use));
      rs += s[j][2 * r] + s[j][2 * r + 1];
    }
    l[r] = l[r] * alpha + rs;
    m[r] = m_new;
#pragma unroll
    for (int n = 0; n < NT; n++) {
      o[n][2 * r] *= alpha;
      o[n][2 * r + 1] *= alpha;
    }
  }
}

// A warp's accumulator (its 16 rows x D) times scale[r] as bf16 into rows row0 + g + 8 r of
// base (rows at or past limit are skipped): every output of the kernels goes through here.
template <int D>
__device__ __forceinline__ void store_rows(bf16* base, long long row_stride, int limit,
                                           const float (&acc)[D / 8][4], const float (&scale)[2],
                                           int row0, int g, int t4) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = row0 + g + r * 8;
    if (row >= limit) continue;
    bf16* out = base + (long long)row * row_stride;
#pragma unroll
    for (int n = 0; n < D / 8; n++)
      *reinterpret_cast<__nv_bfloat162*>(out + n * 8 + 2 * t4) =
          __floats2bfloat162_rn(acc[n][2 * r] * scale[r], acc[n][2 * r + 1] * scale[r]);
  }
}

// store_rows through the warp's scratch in shared memory (16 rows of D + 8: the pad keeps the
// 4-byte writes free of bank conflicts): then each lane stores 16-byte pieces, consecutive lanes
// along a row. The accumulator's 4-byte stores had throttled the LSU queue when a CTA with a
// short list exits (NOTES.md run 15). Needs base and row_stride aligned to 8 elements
// (KParams::staged_stores) and a barrier between the kernel's last shared-memory use and this.
template <int D>
__device__ __forceinline__ void store_rows_staged(bf16* scratch, bf16* base, long long row_stride, int limit,
                                                  const float (&acc)[D / 8][4], const float (&scale)[2],
                                                  int row0, int g, int t4) {
  constexpr int SR = D + 8, PIECES = D / 8, ROWS_PER_PASS = 32 / PIECES;
#pragma unroll
  for (int r = 0; r < 2; r++)
#pragma unroll
    for (int n = 0; n < D / 8; n++)
      *reinterpret_cast<__nv_bfloat162*>(scratch + (g + r * 8) * SR + n * 8 + 2 * t4) =
          __floats2bfloat162_rn(acc[n][2 * r] * scale[r], acc[n][2 * r + 1] * scale[r]);
  __syncwarp();
  const int lane = g * 4 + t4;
#pragma unroll
  for (int i = 0; i < 16 / ROWS_PER_PASS; i++) {
    const int r = i * ROWS_PER_PASS + lane / PIECES, piece = lane % PIECES;
    if (row0 + r < limit)
      *reinterpret_cast<uint4*>(base + (long long)(row0 + r) * row_stride + piece * 8) =
          *reinterpret_cast<const uint4*>(scratch + r * SR + piece * 8);
  }
  __syncwarp();  // the scratch may be written again (dkv_store's second output)
}
// Bytes of the four warps' store scratch (store_rows_staged).
constexpr int store_scratch_bytes(int D) { return 4 * 16 * (D + 8) * 2; }

// Every kernel's outputs go through here: staged (scratch != nullptr) or straight from the
// accumulator.
template <int D>
__device__ __forceinline__ void store_out(bf16* scratch, bf16* base, long long row_stride, int limit,
                                          const float (&acc)[D / 8][4], const float (&scale)[2], int row0,
                                          int g, int t4) {
  if (scratch) store_rows_staged<D>(scratch, base, row_stride, limit, acc, scale, row0, g, t4);
  else store_rows<D>(base, row_stride, limit, acc, scale, row0, g, t4);
}

// O = o / l as bf16 and lse2 = m + log2(l) (-inf for a row that saw no key) for the warp's
// rows row0 + g and row0 + g + 8 of head h, batch row b.
template <int D>
__device__ __forceinline__ void fwd_store(const AttnArgs& a, const float (&o)[D / 8][4],
                                          const float (&m)[2], const float (&l)[2], int b, int h,
                                          int row0, int g, int t4, bf16* scratch = nullptr) {
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const float lsum = quad_sum(l[r]);
    inv[r] = lsum > 0.f ? 1.f / lsum : 0.f;
    const int row = row0 + g + r * 8;
    if (row < a.Tq && t4 == 0)
      a.lse[((long long)b * a.NH + h) * a.Tq + row] = lsum > 0.f ? m[r] + log2f(lsum) : -INFINITY;
  }
  store_out<D>(scratch, a.o + b * a.o_batch + h * D, a.o_row, a.Tq, o, inv, row0, g, t4);
}
// ------------------------------------------------------------------------------------------
// Backward pieces (same accumulator layout as the forward's).

// dq: s (Q K^T) becomes dS = P (dp - dvec) without the softmax scale, P = exp2(s2 - lse2) and
// 0 where the pattern masks (wb: this warp's pair bits of entry e, keep_mask as in fwd_mask).
// The wgmma dq computes P (dq_p) while dP is still in flight and multiplies afterwards
// (dq_ds_from_p); dq_ds runs the two back to back.
template <bool FULL>
__device__ __forceinline__ uint32_t dq_keep(const KParams& p, int hl, int e, int wb, bool elem, int row0,
                                            int g, int t4, const int32_t* seg) {
  return FULL ? ~0u : keep_mask<8, true>(p, hl, e, wb, elem, row0, 0, g, t4, seg);
}
template <bool FULL>
__device__ __forceinline__ void dq_p(float (&s)[8][4], const KParams& p, int hl, int e, int wb,
                                     bool elem, int row0, int g, int t4, const float (&lse)[2],
                                     const int32_t* seg) {
  const uint32_t keep = dq_keep<FULL>(p, hl, e, wb, elem, row0, g, t4, seg);
#pragma unroll
  for (int j = 0; j < 8; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float pv = exp2f(s[j][i] * p.scale_log2 - lse[i >> 1]);
      s[j][i] = kept(keep, j, i) ? pv : 0.f;
    }
}
__device__ __forceinline__ void dq_ds_from_p(float (&s)[8][4], const float (&dp)[8][4],
                                             const float (&dvr)[2]) {
#pragma unroll
  for (int j = 0; j < 8; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) s[j][i] = s[j][i] * (dp[j][i] - dvr[i >> 1]);
}
template <bool FULL>
__device__ __forceinline__ void dq_ds(float (&s)[8][4], const float (&dp)[8][4], const KParams& p,
                                      int hl, int e, int wb, bool elem, int row0, int g, int t4,
                                      const float (&lse)[2], const float (&dvr)[2],
                                      const int32_t* seg) {
  dq_p<FULL>(s, p, hl, e, wb, elem, row0, g, t4, lse, seg);
  dq_ds_from_p(s, dp, dvr);
}

// dkv: for J n8 blocks of queries starting at qbase of the gathered query tile (rows = this
// warp's 16 keys from key0), s (K Q^T) becomes P^T and dp (V dO^T) becomes dS^T; hb has one
// bit per 16-query block from qbase, cL / cDv are the tile's lse2 and dvec.
// As in dq, the wgmma dkv splits the work in dkv_p (while dP^T is in flight) and
// dkv_ds_from_p (after it); dkv_ps runs the two back to back.
template <int J, bool FULL>
__device__ __forceinline__ uint32_t dkv_keep(const KParams& p, int hl, int e, int hb, bool elem, int qbase,
                                             int key0, int g, int t4, const int32_t* seg) {
  return FULL ? ~0u : keep_mask<J, false>(p, hl, e, hb, elem, key0, qbase, g, t4, seg);
}
template <int J, bool FULL>
__device__ __forceinline__ void dkv_p(float (&s)[J][4], const KParams& p, int hl, int e, int hb,
                                      bool elem, int qbase, int key0, int g, int t4,
                                      const float* cL, const int32_t* seg) {
  const uint32_t keep = dkv_keep<J, FULL>(p, hl, e, hb, elem, qbase, key0, g, t4, seg);
#pragma unroll
  for (int j = 0; j < J; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int ql = qbase + j * 8 + 2 * t4 + (i & 1);
      s[j][i] = kept(keep, j, i) ? exp2f(s[j][i] * p.scale_log2 - cL[ql]) : 0.f;
    }
}
template <int J>
__device__ __forceinline__ void dkv_ds_from_p(const float (&s)[J][4], float (&dp)[J][4], int qbase,
                                              int t4, const float* cDv) {
#pragma unroll
  for (int j = 0; j < J; j++)
#pragma unroll
    for (int i = 0; i < 4; i++) dp[j][i] = s[j][i] * (dp[j][i] - cDv[qbase + j * 8 + 2 * t4 + (i & 1)]);
}
template <int J, bool FULL>
__device__ __forceinline__ void dkv_ps(float (&s)[J][4], float (&dp)[J][4], const KParams& p, int hl,
                                       int e, int hb, bool elem, int qbase, int key0, int g, int t4,
                                       const float* cL, const float* cDv, const int32_t* seg) {
  dkv_p<J, FULL>(s, p, hl, e, hb, elem, qbase, key0, g, t4, cL, seg);
  dkv_ds_from_p<J>(s, dp, qbase, t4, cDv);
}

// dQ = scale * dq for rows row0 + g, row0 + g + 8.
template <int D>
__device__ __forceinline__ void dq_store(const AttnArgs& a, const float (&dq)[D / 8][4], float scale,
                                         int b, int h, int row0, int g, int t4, bf16* scratch = nullptr) {
  store_out<D>(scratch, a.dq + b * a.dq_batch + h * D, a.dq_row, a.Tq, dq, {scale, scale}, row0, g, t4);
}
// dK = scale * dk and dV = dv for keys key0 + g, key0 + g + 8 (key0 < 0: an empty block).
template <int D>
__device__ __forceinline__ void dkv_store(const AttnArgs& a, const float (&dk)[D / 8][4],
                                          const float (&dv)[D / 8][4], float scale, int b, int h,
                                          int key0, int g, int t4, bf16* scratch = nullptr) {
  if (key0 < 0) return;
  store_out<D>(scratch, a.dk + b * a.dkv_batch + h * D, a.dkv_row, a.Tk, dk, {scale, scale}, key0, g, t4);
  store_out<D>(scratch, a.dv + b * a.dkv_batch + h * D, a.dkv_row, a.Tk, dv, {1.f, 1.f}, key0, g, t4);
}

// dq's lse2 for rows row0 + g and row0 + g + 8; rows past Tq get +inf so that their P is
// exactly 0.
__device__ __forceinline__ void dq_row_lse(const AttnArgs& a, int b, int h, int row0, int g, float (&lse)[2]) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = row0 + g + r * 8;
    lse[r] = row < a.Tq ? a.lse[((long long)b * a.NH + h) * a.Tq + row] : INFINITY;
  }
}
// dq's per-row statistics, rows row0 + g and row0 + g + 8: lse2 (as dq_row_lse) and dvec.
__device__ __forceinline__ void dq_row_stats(const AttnArgs& a, int b, int h, int row0, int g,
                                             float (&lse)[2], float (&dvr)[2]) {
  dq_row_lse(a, b, h, row0, g, lse);
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = row0 + g + r * 8;
    dvr[r] = row < a.Tq ? a.dvec[((long long)b * a.NH + h) * a.Tq + row] : 0.f;
  }
}
// The wgmma kernels (attention_sm90a.cu, sm_90a only): false when this build or device has no
// such kernel for head dim D (the caller then runs the mma.sync ones). dq / dkv take the
// parameters of their launch (lists set as bwd_d sets them).
bool fwd_wgmma(const KParams& p, int D, dim3 grid, cudaStream_t s);
bool dq_wgmma(const KParams& p, int D, dim3 grid, cudaStream_t s);
bool dkv_wgmma(const KParams& p, int D, dim3 grid, cudaStream_t s);

}  // namespace lcx::cuda::attnk
