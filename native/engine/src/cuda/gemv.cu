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
// (a LayerNorm, the attention merge) still runs, so the weight stream does not stop between
// kernels. Two epilogues save a kernel each per layer: GELU after the MLP's first matmul, and
// the K/V append after the qkv matmul.
#include <cuda_bf16.h>

#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

constexpr int kGemvWarps = 8;
constexpr int kPrefetch = 8;  // 16-byte pieces per lane: a whole 2048-wide row, 32 registers
constexpr float kS2Pi = 0.7978845608028654f;  // sqrt(2 / pi), GPT-2's gelu_new (gelu.cu)

template <int MODE>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_kernel(const GemvArgs a) {
  pdl_release();
  const int row = blockIdx.x * kGemvWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  const bool live = row < a.OC;
  const uint4* wr = reinterpret_cast<const uint4*>(a.w + (size_t)(live ? row : 0) * a.IC);
  const int n = a.IC / 8;
  uint4 pre[kPrefetch];  // weights never change during a step: safe to read before the wait
#pragma unroll
  for (int i = 0; i < kPrefetch; i++)
    if (live && lane + 32 * i < n) pre[i] = __ldg(wr + lane + 32 * i);
  pdl_wait();
  if (!live) return;
  const uint4* xr = reinterpret_cast<const uint4*>(a.x);
  float acc = 0.f;
  auto fma8 = [&](const uint4& wv, const uint4& xv) {
    const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&wv);
    const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&xv);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float2 p = __bfloat1622float2(wp[i]), q = __bfloat1622float2(xp[i]);
      acc = fmaf(p.x, q.x, acc);
      acc = fmaf(p.y, q.y, acc);
    }
  };
  // x is the previous kernel's output: plain loads (not the read-only path), after the wait
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
      const float x = __bfloat162float(y);
      y = __float2bfloat16_rn(0.5f * x * (1.f + tanhf(kS2Pi * (x + 0.044715f * x * x * x))));
    }
    static_cast<bf16*>(a.out)[row] = y;
    if (a.kcache && row >= a.C) {  // K and V rows of the fused qkv output go to the cache too
      const long long pos = a.dev_len ? *a.dev_len : a.len;
      bf16* cache = row < 2 * a.C ? a.kcache : a.vcache;
      cache[pos * a.C + row % a.C] = y;
    }
  } else if constexpr (MODE == GEMV_RESIDUAL) {
    static_cast<float*>(a.out)[row] = a.resid[row] + acc;
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

void gemv_bf16(int mode, const GemvArgs& a, cudaStream_t s) {
  const dim3 grid(ceil_div(a.OC, kGemvWarps)), block(kGemvWarps * 32);
  switch (mode) {
    case GEMV_BF16: launch_k(gemv_kernel<GEMV_BF16>, grid, block, 0, s, a); break;
    case GEMV_RESIDUAL: launch_k(gemv_kernel<GEMV_RESIDUAL>, grid, block, 0, s, a); break;
    case GEMV_F32: launch_k(gemv_kernel<GEMV_F32>, grid, block, 0, s, a); break;
    case GEMV_BF16_GELU: launch_k(gemv_kernel<GEMV_BF16_GELU>, grid, block, 0, s, a); break;
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
