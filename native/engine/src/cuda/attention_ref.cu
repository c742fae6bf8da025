// Brute-force attention on the GPU, for tests only: every (query, key) pair is tested with the
// reference predicate (same rules as lcx::attends), fp32 throughout, no tiles, no skipping.
// One warp per row (query or key), lanes split the head dimension. Outputs are fp32
// (B, T, NH, HS) contiguous.
#include <cmath>

#include "attention.hpp"
#include "common.cuh"
#include "longctx.h"

namespace lcx::cuda {

namespace {

struct RefP {
  AttnArgs a;
  AttnPattern pat;
  float scale;
  float *o, *dq, *dk, *dv, *lse, *dvec;
};

__device__ bool ref_attends(const RefP& p, int h, int q, int k, const int32_t* seg) {
  if (k > q) return false;
  if (seg && seg[k] != seg[q]) return false;
  if (p.pat.kind == LCX_ATTN_WINDOW) return q - k < p.pat.window;
  if (p.pat.kind == LCX_ATTN_SPARSE) {
    const int hl = p.pat.layout_heads > 1 ? h : 0;
    return p.pat.layout_dev[((size_t)hl * p.pat.nb + q / p.pat.block) * p.pat.nb + k / p.pat.block] != 0;
  }
  return true;
}

constexpr int MAXE = 4;  // head dim up to 128 = 32 lanes x 4

__device__ void load_row(float (&r)[MAXE], const bf16* src, int HS, int lane) {
#pragma unroll
  for (int e = 0; e < MAXE; e++) {
    const int d = lane + 32 * e;
    r[e] = d < HS ? __bfloat162float(src[d]) : 0.f;
  }
}
__device__ float dot_row(const float (&x)[MAXE], const bf16* src, int HS, int lane) {
  float acc = 0.f;
#pragma unroll
  for (int e = 0; e < MAXE; e++) {
    const int d = lane + 32 * e;
    if (d < HS) acc += x[e] * __bfloat162float(src[d]);
  }
  return warp_sum(acc);
}

// Forward per (b, h, q): o, lse (natural log), dvec = dO . o when dout is given.
__global__ void ref_fwd(RefP p) {
  const AttnArgs& a = p.a;
  const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (w >= (long long)a.B * a.NH * a.Tq) return;
  const int q = (int)(w % a.Tq), h = (int)((w / a.Tq) % a.NH), b = (int)(w / ((long long)a.Tq * a.NH));
  const int32_t* seg = a.seg ? a.seg + b * a.seg_batch : nullptr;
  float qr[MAXE], o[MAXE] = {0, 0, 0, 0};
  load_row(qr, a.q + b * a.q_batch + (long long)q * a.q_row + h * a.HS, a.HS, lane);
  float m = -INFINITY, l = 0.f;
  const int qa = a.q_offset + q;
  for (int k = 0; k <= qa && k < a.Tk; k++) {
    if (!ref_attends(p, h, qa, k, seg)) continue;
    const float s = dot_row(qr, a.k + b * a.kv_batch + (long long)k * a.kv_row + h * a.HS, a.HS, lane) * p.scale;
    const float mn = fmaxf(m, s), c = expf(m - mn), e = expf(s - mn);
    l = l * c + e;
    const bf16* vr = a.v + b * a.kv_batch + (long long)k * a.kv_row + h * a.HS;
#pragma unroll
    for (int i = 0; i < MAXE; i++) {
      const int d = lane + 32 * i;
      o[i] = o[i] * c + (d < a.HS ? e * __bfloat162float(vr[d]) : 0.f);
    }
    m = mn;
  }
  const size_t orow = (((size_t)b * a.Tq + q) * a.NH + h) * a.HS;
  float dv = 0.f;
#pragma unroll
  for (int i = 0; i < MAXE; i++) {
    const int d = lane + 32 * i;
    if (d < a.HS) {
      const float val = l > 0.f ? o[i] / l : 0.f;
      p.o[orow + d] = val;
      if (a.dout) dv += val * __bfloat162float(a.dout[b * a.o_batch + (long long)q * a.o_row + h * a.HS + d]);
    }
  }
  dv = warp_sum(dv);
  if (lane == 0) {
    const size_t si = ((size_t)b * a.NH + h) * a.Tq + q;
    p.lse[si] = m + logf(l);
    if (p.dvec) p.dvec[si] = dv;
  }
}

__global__ void ref_dq(RefP p) {
  const AttnArgs& a = p.a;
  const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (w >= (long long)a.B * a.NH * a.Tq) return;
  const int q = (int)(w % a.Tq), h = (int)((w / a.Tq) % a.NH), b = (int)(w / ((long long)a.Tq * a.NH));
  const int32_t* seg = a.seg ? a.seg + b * a.seg_batch : nullptr;
  float qr[MAXE], dor[MAXE], acc[MAXE] = {0, 0, 0, 0};
  load_row(qr, a.q + b * a.q_batch + (long long)q * a.q_row + h * a.HS, a.HS, lane);
  load_row(dor, a.dout + b * a.o_batch + (long long)q * a.o_row + h * a.HS, a.HS, lane);
  const size_t si = ((size_t)b * a.NH + h) * a.Tq + q;
  const float lse = p.lse[si], dvec = p.dvec[si];
  const int qa = a.q_offset + q;
  for (int k = 0; k <= qa && k < a.Tk; k++) {
    if (!ref_attends(p, h, qa, k, seg)) continue;
    const bf16* kr = a.k + b * a.kv_batch + (long long)k * a.kv_row + h * a.HS;
    const float s = dot_row(qr, kr, a.HS, lane) * p.scale;
    const float pr = expf(s - lse);
    const float dp = dot_row(dor, a.v + b * a.kv_batch + (long long)k * a.kv_row + h * a.HS, a.HS, lane);
    const float ds = pr * (dp - dvec);
#pragma unroll
    for (int i = 0; i < MAXE; i++) {
      const int d = lane + 32 * i;
      if (d < a.HS) acc[i] += ds * __bfloat162float(kr[d]);
    }
  }
  const size_t orow = (((size_t)b * a.Tq + q) * a.NH + h) * a.HS;
#pragma unroll
  for (int i = 0; i < MAXE; i++) {
    const int d = lane + 32 * i;
    if (d < a.HS) p.dq[orow + d] = acc[i] * p.scale;
  }
}

// Per (b, h, key): dk, dv over all queries that may attend it (self-attention: Tq == Tk).
__global__ void ref_dkv(RefP p) {
  const AttnArgs& a = p.a;
  const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (w >= (long long)a.B * a.NH * a.Tk) return;
  const int k = (int)(w % a.Tk), h = (int)((w / a.Tk) % a.NH), b = (int)(w / ((long long)a.Tk * a.NH));
  const int32_t* seg = a.seg ? a.seg + b * a.seg_batch : nullptr;
  float kr[MAXE], vr[MAXE], dk[MAXE] = {0, 0, 0, 0}, dv[MAXE] = {0, 0, 0, 0};
  load_row(kr, a.k + b * a.kv_batch + (long long)k * a.kv_row + h * a.HS, a.HS, lane);
  load_row(vr, a.v + b * a.kv_batch + (long long)k * a.kv_row + h * a.HS, a.HS, lane);
  for (int q = k; q < a.Tq; q++) {
    if (!ref_attends(p, h, q, k, seg)) continue;
    const bf16* qrow = a.q + b * a.q_batch + (long long)q * a.q_row + h * a.HS;
    const bf16* drow = a.dout + b * a.o_batch + (long long)q * a.o_row + h * a.HS;
    const size_t si = ((size_t)b * a.NH + h) * a.Tq + q;
    const float s = dot_row(kr, qrow, a.HS, lane) * p.scale;
    const float pr = expf(s - p.lse[si]);
    const float dp = dot_row(vr, drow, a.HS, lane);
    const float ds = pr * (dp - p.dvec[si]);
#pragma unroll
    for (int i = 0; i < MAXE; i++) {
      const int d = lane + 32 * i;
      if (d < a.HS) {
        dk[i] += ds * __bfloat162float(qrow[d]);
        dv[i] += pr * __bfloat162float(drow[d]);
      }
    }
  }
  const size_t orow = (((size_t)b * a.Tk + k) * a.NH + h) * a.HS;
#pragma unroll
  for (int i = 0; i < MAXE; i++) {
    const int d = lane + 32 * i;
    if (d < a.HS) {
      p.dk[orow + d] = dk[i] * p.scale;
      p.dv[orow + d] = dv[i];
    }
  }
}

}  // namespace

void attention_reference(const AttnArgs& a, const AttnPattern& pat, float* o, float* dq, float* dk,
                         float* dv, cudaStream_t stream) {
  if (a.HS > 32 * MAXE) fail(LCX_ERR_UNSUPPORTED, "attention_reference: head size %d > 128", a.HS);
  RefP p{};
  p.a = a;
  p.pat = pat;
  p.scale = 1.0f / std::sqrt((float)a.HS);
  p.o = o;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  const size_t rows = (size_t)a.B * a.NH * a.Tq;
  LCX_CUDA_CHECK(cudaMalloc(&p.lse, rows * sizeof(float)));
  LCX_CUDA_CHECK(cudaMalloc(&p.dvec, rows * sizeof(float)));
  const int warps_per_block = 8;
  ref_fwd<<<ceil_div(rows, warps_per_block), 32 * warps_per_block, 0, stream>>>(p);
  LCX_LAUNCH_CHECK();
  if (a.dout && dq && dk && dv) {
    ref_dq<<<ceil_div(rows, warps_per_block), 32 * warps_per_block, 0, stream>>>(p);
    LCX_LAUNCH_CHECK();
    ref_dkv<<<ceil_div((size_t)a.B * a.NH * a.Tk, warps_per_block), 32 * warps_per_block, 0, stream>>>(p);
    LCX_LAUNCH_CHECK();
  }
  LCX_CUDA_CHECK(cudaStreamSynchronize(stream));
  LCX_CUDA_CHECK(cudaFree(p.lse));
  LCX_CUDA_CHECK(cudaFree(p.dvec));
}

}  // namespace lcx::cuda
