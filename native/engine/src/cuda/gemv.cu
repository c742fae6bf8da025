// Matrix-vector products for one row of activations (KV-cached decoding): out (OC) = W (OC, IC) x.
//
// Why not cuBLASLt with N = 1: its heuristic is asked for a GEMM; for a single column it may
// return a tiled kernel that leaves most of the weight bandwidth unused, and decoding is nothing
// but reading every weight once per token (2.6 GB for the 1.3B model: ~0.9 ms at 3 TB/s).
// One warp per output row, 16-byte loads of the weight row (coalesced: 512 bytes per warp
// instruction), x (<= 16 KB) re-read from L1, fp32 accumulation, warp reduction.
//
// In the decode graph the kernels are launched with PDL (common.cuh): the first kPrefetch
// 16-byte pieces of each lane's weights are loaded before pdl_wait(), while the kernel before
// (a LayerNorm, the attention, another GEMV) still runs, so the weight stream does not stop
// between kernels. Two epilogues save a kernel each per layer: GELU after the MLP's first matmul, and
// the K/V append after the qkv matmul.
//
// Decode fusions (GemvArgs::ln_x, res_bias): the qkv and fc products normalise the fp32 residual
// row themselves, so the decode graph runs no LayerNorm kernel (49 per token, ~5 us each). Every
// CTA reads the row (<= 16 KB, from L2), reduces it exactly as ln_fwd_row_kernel does (same
// 256-thread mapping and block sums, so the same bf16 x bit for bit) and keeps x in shared
// memory. The LayerNorm parameters are copied to shared memory with cp.async before pdl_wait
// (no registers held next to the 32 of prefetched weights, nothing to wait for before the
// residual row is read). The output projections add their bias in the epilogue (resid + W x,
// then + bias: the unfused path's order, so the residual is bit-identical), so no bias is pending.
#include <cuda_bf16.h>

#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

constexpr int kGemvWarps = 8;
constexpr int kGemvThreads = kGemvWarps * 32;
constexpr int kPrefetch = 8;  // 16-byte pieces per lane: a whole 2048-wide row, 32 registers
constexpr int kLnMax = 16;    // LayerNorm prologue: columns per thread (C <= 4096), as layernorm.cu

// LayerNorm prologue: none, or the dtype of its parameters (and of res_bias)
enum { LN_NONE = 0, LN_F32 = 1, LN_BF16 = 2 };

__device__ __forceinline__ float param_at(const void* p, bool is_bf16, int i) {
  return is_bf16 ? __bfloat162float(static_cast<const bf16*>(p)[i]) : static_cast<const float*>(p)[i];
}


// x = LayerNorm(ln_x) * w + b into xs (bf16), the arithmetic of ln_fwd_row_kernel (layernorm.cu:
// row_mean_rstd)
// with the same thread -> column map, so the bits match the unfused path. sw, sb: the parameters
// in shared memory, their cp.async copies still in flight.
template <int LN>
__device__ __forceinline__ void ln_prologue(const GemvArgs& a, const void* sw, const void* sb,
                                            bf16* xs, float* red) {
  const int C = a.IC;
  float v[kLnMax];
#pragma unroll
  for (int i = 0; i < kLnMax; i++) {
    const int c = threadIdx.x + i * kGemvThreads;
    v[i] = c < C ? a.ln_x[c] : 0.f;  // the previous kernel's output: plain loads, after the wait
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");  // the barriers below publish them
  float m, rs;
  row_mean_rstd(v, C, a.ln_eps, red, &m, &rs);
#pragma unroll
  for (int i = 0; i < kLnMax; i++) {
    const int c = threadIdx.x + i * kGemvThreads;
    if (c < C)
      xs[c] = __float2bfloat16_rn((v[i] - m) * rs * param_at(sw, LN == LN_BF16, c) +
                                  param_at(sb, LN == LN_BF16, c));
  }
  __syncthreads();  // every warp reads all of x
}

// LN instances are held to 80 registers (3 CTAs per SM): left alone, ptxas picked 80 on sm_90
// and spilled 4 bytes in the fp32-parameter ones; at 64 (4 CTAs) all of them spill. (0: no
// minimum, the plain instances compile as before.)
template <int MODE, int LN>
__global__ void __launch_bounds__(kGemvThreads, LN != LN_NONE ? 3 : 0) gemv_kernel(const GemvArgs a) {
  extern __shared__ __align__(16) unsigned char gemv_smem[];  // LN: w, b (param dtype), x (bf16)
  pdl_release();
  const int row = blockIdx.x * kGemvWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  const bool live = row < a.OC;
  const uint4* wr = reinterpret_cast<const uint4*>(a.w + (size_t)(live ? row : 0) * a.IC);
  const int n = a.IC / 8;
  uint4 pre[kPrefetch];  // weights never change during a step: safe to read before the wait
#pragma unroll
  for (int i = 0; i < kPrefetch; i++)
    if (live && lane + 32 * i < n) pre[i] = __ldg(wr + lane + 32 * i);
  // Shared memory of the LayerNorm: w, b (IC each, 16-byte pieces since IC % 8 == 0), x.
  const int pbytes = a.IC * (LN == LN_BF16 ? 2 : 4);
  unsigned char* sw = gemv_smem;
  unsigned char* sb = gemv_smem + pbytes;
  bf16* xs = reinterpret_cast<bf16*>(gemv_smem + 2 * pbytes);
  if constexpr (LN != LN_NONE) {
    // No decode-graph kernel writes the LayerNorm parameters either.
    const int np = pbytes / 16;
    for (int i = threadIdx.x; i < 2 * np; i += kGemvThreads) {
      const bool isw = i < np;
      const int j = isw ? i : i - np;
      const unsigned char* src = static_cast<const unsigned char*>(isw ? a.ln_w : a.ln_b);
      cp_async16((isw ? sw : sb) + 16 * j, src + 16 * j);
    }
  }
  pdl_wait();
  const uint4* xr;
  if constexpr (LN != LN_NONE) {
    __shared__ float red[32];
    ln_prologue<LN>(a, sw, sb, xs, red);  // all warps, dead rows too: it has barriers
    xr = reinterpret_cast<const uint4*>(xs);
  } else {
    xr = reinterpret_cast<const uint4*>(a.x);
  }
  if (!live) return;
  float acc = 0.f;
  // bf16 pairs unpacked from 32-bit words by shifts (exact, the same values as
  // __bfloat1622float2): split into 16-bit halves right at the load, the prefetched weights took
  // 64 registers instead of 32 on sm_90 across the LayerNorm prologue.
  auto fma8 = [&](const uint4& wv, const uint4& xv) {
    const uint32_t wp[4] = {wv.x, wv.y, wv.z, wv.w}, xp[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      acc = fmaf(__uint_as_float(wp[i] << 16), __uint_as_float(xp[i] << 16), acc);
      acc = fmaf(__uint_as_float(wp[i] & 0xffff0000u), __uint_as_float(xp[i] & 0xffff0000u), acc);
    }
  };
  // x is the previous kernel's output (or this CTA's LayerNorm): plain loads, after the wait
#pragma unroll
  for (int i = 0; i < kPrefetch; i++)
    if (lane + 32 * i < n) {
      const uint4 xv = xr[lane + 32 * i];
      fma8(pre[i], xv);
    }
#pragma unroll 4
  for (int c = lane + 32 * kPrefetch; c < n; c += 32) {
    const uint4 wv = __ldg(wr + c), xv = xr[c];
    fma8(wv, xv);
  }
  acc = warp_sum(acc);
  if (lane != 0) return;
  if constexpr (MODE == GEMV_BF16 || MODE == GEMV_BF16_GELU) {
    if (a.bias) acc += __bfloat162float(a.bias[row]);
    bf16 y = __float2bfloat16_rn(acc);
    if constexpr (MODE == GEMV_BF16_GELU) {
      // rounded to bf16 first, as the unfused path stores it before gelu_forward
      y = __float2bfloat16_rn(gelu_tanh(__bfloat162float(y)));
    }
    static_cast<bf16*>(a.out)[row] = y;
    if (a.kcache && row >= a.C) {  // K and V rows of the fused qkv output go to the cache too
      const long long pos = a.dev_len ? *a.dev_len : a.len;
      bf16* cache = row < 2 * a.C ? a.kcache : a.vcache;
      cache[pos * a.C + row % a.C] = y;
    }
  } else if constexpr (MODE == GEMV_RESIDUAL) {
    float y = a.resid[row] + acc;
    // the bias after the sum: the unfused path stores resid + W x, and LayerNorm adds the bias
    if (a.res_bias) y += param_at(a.res_bias, a.p_bf16, row);
    static_cast<float*>(a.out)[row] = y;
  } else {
    static_cast<float*>(a.out)[row] = acc;
  }
}

}  // namespace

bool gemv_ok(const void* w, const void* x, int IC) {
  // 16-byte rows: IC a multiple of 8 and both bases 16-byte aligned.
  return IC % 8 == 0 && (reinterpret_cast<uintptr_t>(w) & 15) == 0 &&
         (reinterpret_cast<uintptr_t>(x) & 15) == 0;
}

bool gemv_ln_ok(const void* ln_w, const void* ln_b, int IC) {
  // 16-byte pieces of the parameters (cp.async) and at most kLnMax columns per thread.
  return IC % 8 == 0 && IC <= kGemvThreads * kLnMax &&
         (reinterpret_cast<uintptr_t>(ln_w) & 15) == 0 && (reinterpret_cast<uintptr_t>(ln_b) & 15) == 0;
}

void gemv_bf16(int mode, const GemvArgs& a, cudaStream_t s) {
  const dim3 grid(ceil_div(a.OC, kGemvWarps)), block(kGemvThreads);
  if (a.ln_x) {
    if (!gemv_ln_ok(a.ln_w, a.ln_b, a.IC) || (mode != GEMV_BF16 && mode != GEMV_BF16_GELU))
      fail(LCX_ERR_INTERNAL, "gemv: no LayerNorm prologue for mode %d, IC %d", mode, a.IC);
    const size_t smem = (size_t)a.IC * ((a.p_bf16 ? 2 : 4) * 2 + 2);  // <= 40 KB
    if (mode == GEMV_BF16)
      launch_k(a.p_bf16 ? gemv_kernel<GEMV_BF16, LN_BF16> : gemv_kernel<GEMV_BF16, LN_F32>, grid,
               block, smem, s, a);
    else
      launch_k(a.p_bf16 ? gemv_kernel<GEMV_BF16_GELU, LN_BF16> : gemv_kernel<GEMV_BF16_GELU, LN_F32>,
               grid, block, smem, s, a);
    return;
  }
  switch (mode) {
    case GEMV_BF16: launch_k(gemv_kernel<GEMV_BF16, LN_NONE>, grid, block, 0, s, a); break;
    case GEMV_RESIDUAL: launch_k(gemv_kernel<GEMV_RESIDUAL, LN_NONE>, grid, block, 0, s, a); break;
    case GEMV_F32: launch_k(gemv_kernel<GEMV_F32, LN_NONE>, grid, block, 0, s, a); break;
    case GEMV_BF16_GELU: launch_k(gemv_kernel<GEMV_BF16_GELU, LN_NONE>, grid, block, 0, s, a); break;
    default: fail(LCX_ERR_INTERNAL, "gemv: unknown mode %d", mode);
  }
}

void gemv_bf16(int mode, void* out, const float* resid, const bf16* w, const bf16* x,
               const bf16* bias, int IC, int OC, cudaStream_t s) {
  GemvArgs a{};
  a.out = out;
  a.resid = resid;
  a.w = w;
  a.x = x;
  a.bias = bias;
  a.IC = IC;
  a.OC = OC;
  gemv_bf16(mode, a, s);
}

}  // namespace lcx::cuda
