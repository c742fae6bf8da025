// Single-query attention over the KV cache (KV-cached decoding), split over the keys
// ("flash-decoding").
//
// Why a separate kernel: the tile kernel (attention.cu) gives one CTA to each (64-query tile,
// head). A decoding step has one query, so it ran 16 CTAs (one per head) that each walked the
// whole cache serially, with 63 of its 64 query rows empty: at depth 8000 that was ~0.8 ms per
// layer (16 of 132 SMs busy) for 65 MB of cache that the chip streams in ~25 us.
// Here each CTA takes one chunk of one head's keys (enough chunks for ~4 CTAs per SM), keeps an
// online softmax per warp, merges its warps, and writes an unnormalised partial (o, m, l); the
// partials of a head are merged with the log-sum-exp by the last of its CTAs to finish (a
// per-head arrival counter), or by a second kernel (merge_in_split = false: LCX_CUDA_DECODE_FUSE=0
// and callers that did not zero the counters). The merge kernel cost ~6.6 us per layer, mostly
// launch, ramp and drain, for a few KB of partials. Work is memory-bound (one K and one V row per
// key, read once), so it uses plain coalesced loads and fp32 FMAs, no tensor cores.
//
// The pattern is applied per key with the reference predicate (same as lcx::attends and the
// element mask of attention.cu): window layers only visit [q - window + 1, q], sparse layers
// test the layout per key and skip the loads of masked keys, segments (if given) likewise.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "../core/error.hpp"
#include "attention.hpp"
#include "common.cuh"
#include "longctx.h"

namespace lcx::cuda {

namespace {

constexpr int kDecThreads = 128;           // 4 warps per CTA
constexpr int kDecWarps = kDecThreads / 32;
constexpr int kGroup = 8;                  // keys a warp loads at once (K and V: 16 loads in flight)
constexpr int kMinChunk = kDecWarps * kGroup * 2;  // 64 keys: below that the merge costs more

struct DecParams {
  const bf16 *q, *k, *v;
  long long kv_row;
  bf16* o;
  float* lse;
  const int32_t* seg;
  int NH, Tk, qpos, kind, window, nb, block, layout_heads;
  const uint8_t* layout;
  int k_begin, chunk, nsplit;
  const int* dev_qpos;  // CUDA-graph replay: qpos (= Tk - 1) read here, grid sized for the cache
  float scale_log2;
  float* part;  // (NH, nsplit, D + 2): o (unnormalised), m, l
  int* counters;  // (NH) arrivals per head, zero between calls; nullptr: the merge kernel merges
};

// A lane holds EPL = D / 32 consecutive elements of a row, kept as raw bf16 until used: a group
// of keys in flight costs half the registers of floats, so two groups fit (see the loop below).
template <int EPL>
struct RawRow {
  alignas(8) bf16 x[EPL];
};

template <int EPL>
__device__ __forceinline__ void load_raw(RawRow<EPL>& r, const bf16* p) {
  if constexpr (EPL == 4) {
    *reinterpret_cast<uint2*>(r.x) = *reinterpret_cast<const uint2*>(p);
  } else if constexpr (EPL == 2) {
    *reinterpret_cast<__nv_bfloat162*>(r.x) = *reinterpret_cast<const __nv_bfloat162*>(p);
  } else {
#pragma unroll
    for (int i = 0; i < EPL; i++) r.x[i] = p[i];
  }
}

template <int EPL>
__device__ __forceinline__ float raw_at(const RawRow<EPL>& r, int i) {
  return __bfloat162float(r.x[i]);
}

template <int EPL>
__device__ __forceinline__ void load_row(float (&x)[EPL], const bf16* p) {
  RawRow<EPL> r;
  load_raw(r, p);
#pragma unroll
  for (int i = 0; i < EPL; i++) x[i] = raw_at(r, i);
}

__device__ __forceinline__ bool dec_allowed(const DecParams& p, int hl, int k) {
  if (k > p.qpos) return false;
  if (p.seg && p.seg[k] != p.seg[p.qpos]) return false;
  if (p.kind == LCX_ATTN_WINDOW) return p.qpos - k < p.window;
  if (p.kind == LCX_ATTN_SPARSE)
    return p.layout[((size_t)hl * p.nb + p.qpos / p.block) * p.nb + k / p.block] != 0;
  return true;
}

// One warp's group of kGroup keys: the raw K and V rows in flight, then the online-softmax
// update of (o, m, l) with them. Scores are in the log2 domain (q is pre-scaled).
template <int EPL>
struct Group {
  RawRow<EPL> kr[kGroup], vr[kGroup];
  bool ok[kGroup];

  __device__ __forceinline__ void issue(const DecParams& p, int hl, int kb, int c1, const bf16* kg,
                                        const bf16* vg) {
#pragma unroll
    for (int j = 0; j < kGroup; j++) {
      const int k = kb + j;
      ok[j] = k < c1 && dec_allowed(p, hl, k);  // warp-uniform
      if (ok[j]) {
        load_raw(kr[j], kg + (long long)k * p.kv_row);
        load_raw(vr[j], vg + (long long)k * p.kv_row);
      }
    }
  }

  __device__ __forceinline__ void consume(const float (&qv)[EPL], float (&o)[EPL], float& m, float& l) {
    float sc[kGroup];
#pragma unroll
    for (int j = 0; j < kGroup; j++) {
      float d = 0.f;
      if (ok[j]) {
#pragma unroll
        for (int i = 0; i < EPL; i++) d = fmaf(qv[i], raw_at(kr[j], i), d);
      }
      sc[j] = warp_sum(d);
    }
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kGroup; j++)
      if (ok[j]) mx = fmaxf(mx, sc[j]);
    if (mx == -INFINITY) return;  // no allowed key in this group
    const float m_new = fmaxf(m, mx);
    const float alpha = exp2f(m - m_new);  // m = -inf the first time: alpha = 0, o and l are 0
    l *= alpha;
#pragma unroll
    for (int i = 0; i < EPL; i++) o[i] *= alpha;
#pragma unroll
    for (int j = 0; j < kGroup; j++) {
      if (!ok[j]) continue;
      const float pj = exp2f(sc[j] - m_new);
      l += pj;
#pragma unroll
      for (int i = 0; i < EPL; i++) o[i] = fmaf(pj, raw_at(vr[j], i), o[i]);
    }
    m = m_new;
  }
};

// Head h, output element d: O = sum_s o_s 2^(m_s - M) / sum_s l_s 2^(m_s - M), lse = M + log2 L.
// Loads are unconditional and unrolled (8 splits in flight): run 7's profile showed the
// branchy loop at 4.7-7.2 us per call, one dependent round trip per split. They bypass L1
// (ld.cg): in the split kernel the partials come from other CTAs of the same grid, and an L1
// line this SM cached earlier (another head's partials share lines) could be stale.
template <int D>
__device__ __forceinline__ void merge_head(const DecParams& p, int h, int d) {
  const float* part = p.part + (long long)h * p.nsplit * (D + 2);
  float M = -INFINITY;
#pragma unroll 8
  for (int s = 0; s < p.nsplit; s++) M = fmaxf(M, __ldcg(part + (long long)s * (D + 2) + D));
  float acc = 0.f, L = 0.f;
  if (M != -INFINITY) {
#pragma unroll 8
    for (int s = 0; s < p.nsplit; s++) {
      const float* ps = part + (long long)s * (D + 2);
      const float ms = __ldcg(ps + D), o = __ldcg(ps + d), l = __ldcg(ps + D + 1);
      // A chunk with no allowed key (sparse, segments, past the position) has m = -inf: weight 0.
      const float w = ms == -INFINITY ? 0.f : exp2f(ms - M);
      acc += o * w;
      L += l * w;
    }
  }
  const float inv = L > 0.f ? 1.f / L : 0.f;
  p.o[h * D + d] = __float2bfloat16_rn(acc * inv);
  if (d == 0 && p.lse) p.lse[h] = L > 0.f ? M + log2f(L) : -INFINITY;
}

template <int D>
__global__ void __launch_bounds__(kDecThreads) attn_decode_split_kernel(DecParams p) {
  constexpr int EPL = D / 32;
  pdl_release();
  pdl_wait();  // q and the newest K/V row come from the qkv matmul just before
  if (p.dev_qpos) {
    // Replayed graph: the position lives on the device; chunks past it write an empty partial.
    p.qpos = *p.dev_qpos;
    p.Tk = p.qpos + 1;
    p.k_begin = p.kind == LCX_ATTN_WINDOW ? max(0, p.qpos - p.window + 1) : 0;
  }
  const int split = blockIdx.x, h = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int hl = p.layout_heads > 1 ? h : 0;
  const int c0 = p.k_begin + split * p.chunk, c1 = min(p.Tk, c0 + p.chunk);
  const bf16* kg = p.k + h * D + lane * EPL;
  const bf16* vg = p.v + h * D + lane * EPL;

  float qv[EPL];
  load_row<EPL>(qv, p.q + h * D + lane * EPL);
#pragma unroll
  for (int i = 0; i < EPL; i++) qv[i] *= p.scale_log2;  // scores in the log2 domain

  float o[EPL];
#pragma unroll
  for (int i = 0; i < EPL; i++) o[i] = 0.f;
  float m = -INFINITY, l = 0.f;

  // Warps take interleaved groups of 8 keys, so a CTA's loads stay within one span of the cache.
  // Two groups per warp are in flight: the next group's loads are issued before the current
  // group's dot products and softmax, which would otherwise leave the memory system idle.
  const int stride = kDecWarps * kGroup;
  Group<EPL> g0, g1;
  int kb = c0 + warp * kGroup;
  if (kb < c1) g0.issue(p, hl, kb, c1, kg, vg);
  for (; kb < c1; kb += 2 * stride) {
    if (kb + stride < c1) g1.issue(p, hl, kb + stride, c1, kg, vg);
    g0.consume(qv, o, m, l);
    if (kb + 2 * stride < c1) g0.issue(p, hl, kb + 2 * stride, c1, kg, vg);
    if (kb + stride < c1) g1.consume(qv, o, m, l);
  }

  // Merge the 4 warps of this CTA, then write one partial.
  __shared__ float s_o[kDecWarps][D];
  __shared__ float s_m[kDecWarps], s_l[kDecWarps];
#pragma unroll
  for (int i = 0; i < EPL; i++) s_o[warp][lane * EPL + i] = o[i];
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kDecWarps; w++) M = fmaxf(M, s_m[w]);
  float* part = p.part + ((long long)h * p.nsplit + split) * (D + 2);
  for (int d = threadIdx.x; d < D; d += kDecThreads) {
    float acc = 0.f;
#pragma unroll
    for (int w = 0; w < kDecWarps; w++)
      if (s_m[w] != -INFINITY) acc += s_o[w][d] * exp2f(s_m[w] - M);
    part[d] = acc;
  }
  if (threadIdx.x == 0) {
    float L = 0.f;
#pragma unroll
    for (int w = 0; w < kDecWarps; w++)
      if (s_m[w] != -INFINITY) L += s_l[w] * exp2f(s_m[w] - M);
    part[D] = M;
    part[D + 1] = L;
  }
  if (!p.counters) return;
  // The head's last CTA to get here merges. Writers fence, then count (threadFenceReduction);
  // the counter goes back to 0 for the next layer and the next graph replay (the kernels in
  // between all pass pdl_wait, so this grid has finished before the next split kernel reads it).
  __shared__ bool s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    s_last = atomicAdd(p.counters + h, 1) == p.nsplit - 1;
    if (s_last) {
      p.counters[h] = 0;
      __threadfence();  // the other CTAs' partials are read after their count
    }
  }
  __syncthreads();
  if (s_last && threadIdx.x < D) merge_head<D>(p, h, threadIdx.x);
}

// One CTA per head, one thread per output element (merge_in_split = false).
template <int D>
__global__ void __launch_bounds__(D) attn_decode_merge_kernel(const DecParams p) {
  pdl_release();
  pdl_wait();
  merge_head<D>(p, blockIdx.x, threadIdx.x);
}

int num_sms() {
  static int n = 0;
  if (n == 0) {
    int dev = 0;
    LCX_CUDA_CHECK(cudaGetDevice(&dev));
    LCX_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  }
  return n;
}

template <int D>
void decode_d(DecParams p, cudaStream_t s) {
  launch_k(attn_decode_split_kernel<D>, dim3(p.nsplit, p.NH), dim3(kDecThreads), 0, s, p);
  if (!p.counters) launch_k(attn_decode_merge_kernel<D>, dim3(p.NH), dim3(D), 0, s, p);
}

// Appends m rows of K and V (from the fused qkv rows) to the caches at row `len` (or *dev_len).
// A kernel rather than cudaMemcpy2DAsync: a 2D device copy may go to a copy engine, whose
// per-call latency is paid twice per layer per decoded token; a kernel is also capturable with
// a device-side position.
__global__ void kv_append_kernel(bf16* kc, bf16* vc, const bf16* qkv, int C, int len,
                                 const int* dev_len) {
  pdl_release();
  pdl_wait();
  const int i = blockIdx.x;
  const long long dst = (long long)((dev_len ? *dev_len : len) + i) * C;
  const uint4* src = reinterpret_cast<const uint4*>(qkv + (long long)i * 3 * C);
  uint4* k = reinterpret_cast<uint4*>(kc + dst);
  uint4* v = reinterpret_cast<uint4*>(vc + dst);
  const int n = C / 8;
  for (int c = threadIdx.x; c < n; c += blockDim.x) {
    k[c] = src[n + c];
    v[c] = src[2 * n + c];
  }
}

}  // namespace

void kv_append(bf16* kc, bf16* vc, const bf16* qkv, int m, int C, int len, const int* dev_len,
               cudaStream_t s) {
  if (m == 0) return;
  if (C % 8 != 0 || (reinterpret_cast<uintptr_t>(qkv) & 15) || (reinterpret_cast<uintptr_t>(kc) & 15) ||
      (reinterpret_cast<uintptr_t>(vc) & 15)) {
    if (dev_len) fail(LCX_ERR_INTERNAL, "kv_append: device position needs 16-byte rows");
    LCX_CUDA_CHECK(cudaMemcpy2DAsync(kc + (size_t)len * C, (size_t)C * 2, qkv + C, (size_t)3 * C * 2,
                                     (size_t)C * 2, m, cudaMemcpyDeviceToDevice, s));
    LCX_CUDA_CHECK(cudaMemcpy2DAsync(vc + (size_t)len * C, (size_t)C * 2, qkv + 2 * C, (size_t)3 * C * 2,
                                     (size_t)C * 2, m, cudaMemcpyDeviceToDevice, s));
    return;
  }
  launch_k(kv_append_kernel, dim3(m), dim3(256), 0, s, kc, vc, qkv, C, len, dev_len);
}

size_t attention_decode_scratch(int NH, int HS, int Tk) {
  // partials, then NH ints of arrival counters at the end (merge_in_split)
  return (size_t)NH * ((size_t)std::max(Tk, 1) / kMinChunk + 2) * (HS + 2) + NH;
}

void attention_decode(const AttnArgs& a, const AttnPattern& pat, float* scratch, size_t scratch_floats,
                      cudaStream_t stream, const int* dev_qpos, bool merge_in_split) {
  if (a.B != 1 || a.Tq != 1)
    fail(LCX_ERR_INTERNAL, "attention_decode: one query of one row only (B %d, Tq %d)", a.B, a.Tq);
  DecParams p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.kv_row = a.kv_row;
  p.o = a.o;
  p.lse = a.lse;
  p.seg = a.seg;
  p.NH = a.NH;
  p.Tk = a.Tk;
  p.qpos = a.q_offset;
  p.kind = pat.kind;
  p.window = pat.window;
  if (pat.kind == LCX_ATTN_SPARSE) {
    if (!pat.layout_dev || pat.nb * pat.block <= p.qpos)
      fail(LCX_ERR_ARG, "sparse attention: position %d exceeds the layout built for %d positions",
           p.qpos, pat.nb * pat.block);
    p.nb = pat.nb;
    p.block = pat.block;
    p.layout_heads = pat.layout_heads;
    p.layout = pat.layout_dev;
  } else {
    p.layout_heads = 1;
  }
  if (pat.kind == LCX_ATTN_WINDOW && pat.window < 1)
    fail(LCX_ERR_ARG, "sliding-window attention needs window >= 1, got %d", pat.window);
  p.dev_qpos = dev_qpos;
  if (!dev_qpos && a.q_offset != a.Tk - 1)
    fail(LCX_ERR_INTERNAL, "attention_decode: the query must be the last key (q %d, Tk %d)", a.q_offset, a.Tk);
  p.scale_log2 = 1.4426950408889634f / std::sqrt((float)a.HS);
  // Keys the pattern can reach: window layers start at q - window + 1, the rest at 0.
  p.k_begin = pat.kind == LCX_ATTN_WINDOW ? std::max(0, p.qpos - pat.window + 1) : 0;
  // With dev_qpos, a.Tk is the cache capacity: the grid covers any position up to it.
  const int span = dev_qpos ? (pat.kind == LCX_ATTN_WINDOW ? std::min(a.Tk, pat.window) + kMinChunk : a.Tk)
                            : p.Tk - p.k_begin;
  // Chunks sized for ~4 CTAs per SM over all heads, at least kMinChunk keys each.
  const long long target = 4LL * num_sms();
  int chunk = (int)(((long long)span * a.NH + target - 1) / target);
  chunk = std::max(kMinChunk, (chunk + kMinChunk - 1) / kMinChunk * kMinChunk);
  p.chunk = chunk;
  p.nsplit = (span + chunk - 1) / chunk;
  if ((size_t)a.NH * p.nsplit * (a.HS + 2) + (merge_in_split ? a.NH : 0) > scratch_floats)
    fail(LCX_ERR_INTERNAL, "attention_decode: scratch too small");
  p.part = scratch;
  p.counters = merge_in_split ? reinterpret_cast<int*>(scratch + scratch_floats - a.NH) : nullptr;
  switch (a.HS) {
    case 32: decode_d<32>(p, stream); break;
    case 64: decode_d<64>(p, stream); break;
    case 96: decode_d<96>(p, stream); break;
    case 128: decode_d<128>(p, stream); break;
    default: fail(LCX_ERR_UNSUPPORTED, "CUDA attention: head size %d is not supported (32, 64, 96, 128)", a.HS);
  }
}

}  // namespace lcx::cuda
