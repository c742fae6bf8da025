// LayerNorm over C channels of fp32 residual rows, bf16 output (the next matmul's operand).
// Forward optionally adds a pending bias to the residual first: the attention and MLP output
// projections write x + y with cuBLASLt's beta = 1 (fp32 residual, no bias epilogue on fp32
// outputs), and their bias lands here, fused with the normalisation that reads x anyway.
// Backward (training): one pass per call reads dout, x and dx once and writes dx, its bf16 copy
// (the operand of the next product) and per-CTA column partials of dw, db and of the new dx (the
// gradient of the bias that the projection writing this residual added), reduced afterwards in a
// fixed order (deterministic, no atomics). Shapes the vector kernels cannot take use the scalar
// kernels below: dx by one warp per row, dw/db by a column-parallel pass, then the conversion and
// the bias sum as separate kernels.
#include <algorithm>
#include <cstdlib>

#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

constexpr int kRowBlocks = 128;  // partial sums for weight gradients: fixed, so deterministic

template <class P>
__global__ void ln_fwd_kernel(bf16* out, float* mean, float* rstd, float* x, const P* add_bias,
                              const P* w, const P* b, int N, int C, float eps) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;
  float* xr = x + (size_t)row * C;
  float sum = 0.f;
  for (int c = lane; c < C; c += 32) {
    float v = xr[c];
    if (add_bias) {
      v += to_f(add_bias[c]);
      xr[c] = v;  // each lane re-reads only its own columns below
    }
    sum += v;
  }
  const float m = warp_sum(sum) / C;
  float var = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float d = xr[c] - m;
    var += d * d;
  }
  const float rs = rsqrtf(warp_sum(var) / C + eps);
  bf16* orow = out + (size_t)row * C;
  for (int c = lane; c < C; c += 32)
    orow[c] = __float2bfloat16_rn((xr[c] - m) * rs * to_f(w[c]) + to_f(b[c]));
  if (lane == 0) {
    if (mean) mean[row] = m;
    if (rstd) rstd[row] = rs;
  }
}

// Many rows (training, prefill): one warp per row held in registers as float4s (C % 4 == 0,
// C <= 128 * V4), 16-byte loads, one read of x instead of three, and every load issued before
// the residual store. The scalar kernel above ran at ~1/3 of the memory bandwidth (run 7's
// profile: 111 us per call at 8192 x 2048, ~35 ms of an 8192 step's 305 ms with its backward).
template <class P>
__device__ __forceinline__ float4 load4(const P* p, int i4);
template <>
__device__ __forceinline__ float4 load4<float>(const float* p, int i4) {
  return reinterpret_cast<const float4*>(p)[i4];
}
template <>
__device__ __forceinline__ float4 load4<bf16>(const bf16* p, int i4) { return load_bf16x4(p, i4); }
__device__ __forceinline__ float sum4(float4 v) { return (v.x + v.y) + (v.z + v.w); }

template <class P, int V4>
__global__ void __launch_bounds__(256)
    ln_fwd_vec_kernel(bf16* out, float* mean, float* rstd, float* x, const P* add_bias,
                      const P* w, const P* b, int N, int C, float eps) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;
  const int n4 = C / 4;
  float4* xr = reinterpret_cast<float4*>(x + (size_t)row * C);
  float4 v[V4];
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int j = lane + 32 * i;
    v[i] = j < n4 ? xr[j] : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  if (add_bias) {
    float4 ab[V4];
#pragma unroll
    for (int i = 0; i < V4; i++) {
      const int j = lane + 32 * i;
      ab[i] = j < n4 ? load4<P>(add_bias, j) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int i = 0; i < V4; i++) {
      const int j = lane + 32 * i;
      v[i].x += ab[i].x; v[i].y += ab[i].y; v[i].z += ab[i].z; v[i].w += ab[i].w;
      if (j < n4) xr[j] = v[i];
    }
  }
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < V4; i++) sum += sum4(v[i]);
  const float m = warp_sum(sum) / C;
  float var = 0.f;
#pragma unroll
  for (int i = 0; i < V4; i++)
    if (lane + 32 * i < n4) {
      const float4 d = make_float4(v[i].x - m, v[i].y - m, v[i].z - m, v[i].w - m);
      var += (d.x * d.x + d.y * d.y) + (d.z * d.z + d.w * d.w);
    }
  const float rs = rsqrtf(warp_sum(var) / C + eps);
  bf16* orow = out + (size_t)row * C;
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int j = lane + 32 * i;
    if (j < n4) {
      const float4 wv = load4<P>(w, j), bv = load4<P>(b, j);
      store_bf16x4(orow, j, make_float4((v[i].x - m) * rs * wv.x + bv.x, (v[i].y - m) * rs * wv.y + bv.y,
                                        (v[i].z - m) * rs * wv.z + bv.z, (v[i].w - m) * rs * wv.w + bv.w));
    }
  }
  if (lane == 0) {
    if (mean) mean[row] = m;
    if (rstd) rstd[row] = rs;
  }
}

// Few rows (decoding: N = 1): one 256-thread block per row, the row held in registers. The
// warp-per-row kernel above walks a 2048-wide row in 64 dependent load steps per pass (3 passes),
// tens of microseconds per call with one row, twice per layer; here each thread issues its <= 16
// loads at once and the block reduces. The LayerNorm parameters are read before pdl_wait (no
// kernel of the decode graph writes them), and every load of x and of the pending bias is issued
// before the first store: with a store to x between them the compiler must assume the bias may
// alias x, and the loads became 16 dependent round trips (run 7's profile: 9.7 us per call).
constexpr int kLnRowThreads = 256, kLnRowMax = 16;  // C <= 4096
template <class P>
__global__ void __launch_bounds__(kLnRowThreads)
    ln_fwd_row_kernel(bf16* out, float* mean, float* rstd, float* x, const P* add_bias, const P* w,
                      const P* b, int C, float eps) {
  __shared__ float red[32];
  float wv[kLnRowMax], bv[kLnRowMax];
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) {
    const int c = threadIdx.x + i * kLnRowThreads;
    wv[i] = c < C ? to_f(w[c]) : 0.f;
    bv[i] = c < C ? to_f(b[c]) : 0.f;
  }
  pdl_release();
  pdl_wait();  // x is the previous kernel's output (decode graph: launched with PDL)
  const int row = blockIdx.x;
  float* xr = x + (size_t)row * C;
  float v[kLnRowMax];
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) {
    const int c = threadIdx.x + i * kLnRowThreads;
    v[i] = c < C ? xr[c] : 0.f;
  }
  if (add_bias) {
    float ab[kLnRowMax];
#pragma unroll
    for (int i = 0; i < kLnRowMax; i++) {
      const int c = threadIdx.x + i * kLnRowThreads;
      ab[i] = c < C ? to_f(add_bias[c]) : 0.f;
    }
#pragma unroll
    for (int i = 0; i < kLnRowMax; i++) {
      const int c = threadIdx.x + i * kLnRowThreads;
      v[i] += ab[i];
      if (c < C) xr[c] = v[i];
    }
  }
  float m, rs;
  row_mean_rstd(v, C, eps, red, &m, &rs);
  bf16* orow = out + (size_t)row * C;
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) {
    const int c = threadIdx.x + i * kLnRowThreads;
    if (c < C) orow[c] = __float2bfloat16_rn((v[i] - m) * rs * wv[i] + bv[i]);
  }
  if (threadIdx.x == 0) {
    if (mean) mean[row] = m;
    if (rstd) rstd[row] = rs;
  }
}

// dx += rstd * (dn - mean(dn) - xhat * mean(dn * xhat)),  dn = dout * w
template <class P>
__global__ void ln_bwd_dx_kernel(float* dx, const bf16* dout, const float* x, const float* mean,
                                 const float* rstd, const P* w, int N, int C) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;
  const float m = mean[row], rs = rstd[row];
  const float* xr = x + (size_t)row * C;
  const bf16* dr = dout + (size_t)row * C;
  float s1 = 0.f, s2 = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float dn = __bfloat162float(dr[c]) * to_f(w[c]);
    s1 += dn;
    s2 += dn * (xr[c] - m) * rs;
  }
  s1 = warp_sum(s1) / C;
  s2 = warp_sum(s2) / C;
  float* dxr = dx + (size_t)row * C;
  for (int c = lane; c < C; c += 32) {
    const float dn = __bfloat162float(dr[c]) * to_f(w[c]);
    const float xh = (xr[c] - m) * rs;
    dxr[c] += rs * (dn - s1 - xh * s2);
  }
}

// The same in registers (C % 4 == 0, C <= 128 * V4): dout, x and w read once, 16-byte loads.
template <class P, int V4>
__global__ void __launch_bounds__(256)
    ln_bwd_dx_vec_kernel(float* dx, const bf16* dout, const float* x, const float* mean,
                         const float* rstd, const P* w, int N, int C) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;
  const int n4 = C / 4;
  const float m = mean[row], rs = rstd[row];
  const float4* xr = reinterpret_cast<const float4*>(x + (size_t)row * C);
  const bf16* dr = dout + (size_t)row * C;
  float4 dn[V4], xh[V4];
  float s1 = 0.f, s2 = 0.f;
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int j = lane + 32 * i;
    if (j < n4) {
      const float4 d = load_bf16x4(dr, j), wv = load4<P>(w, j), xv = xr[j];
      dn[i] = make_float4(d.x * wv.x, d.y * wv.y, d.z * wv.z, d.w * wv.w);
      xh[i] = make_float4((xv.x - m) * rs, (xv.y - m) * rs, (xv.z - m) * rs, (xv.w - m) * rs);
    } else {
      dn[i] = xh[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    s1 += sum4(dn[i]);
    s2 += (dn[i].x * xh[i].x + dn[i].y * xh[i].y) + (dn[i].z * xh[i].z + dn[i].w * xh[i].w);
  }
  s1 = warp_sum(s1) / C;
  s2 = warp_sum(s2) / C;
  float4* dxr = reinterpret_cast<float4*>(dx + (size_t)row * C);
#pragma unroll
  for (int i = 0; i < V4; i++) {
    const int j = lane + 32 * i;
    if (j < n4) {
      float4 g = dxr[j];
      g.x += rs * (dn[i].x - s1 - xh[i].x * s2);
      g.y += rs * (dn[i].y - s1 - xh[i].y * s2);
      g.z += rs * (dn[i].z - s1 - xh[i].z * s2);
      g.w += rs * (dn[i].w - s1 - xh[i].w * s2);
      dxr[j] = g;
    }
  }
}

// partial[rb][c] = sum over rows of row-block rb of dout * xhat; partial[rb][C + c] = of dout.
__global__ void ln_bwd_dw_kernel(float* partial, const bf16* dout, const float* x,
                                 const float* mean, const float* rstd, int N, int C, int rows_per) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int rb = blockIdx.y;
  if (c >= C) return;
  const int r0 = rb * rows_per, r1 = min(N, r0 + rows_per);
  float aw = 0.f, ab = 0.f;
  for (int r = r0; r < r1; r++) {
    const float d = __bfloat162float(dout[(size_t)r * C + c]);
    aw += d * (x[(size_t)r * C + c] - mean[r]) * rstd[r];
    ab += d;
  }
  partial[(size_t)rb * 2 * C + c] = aw;
  partial[(size_t)rb * 2 * C + C + c] = ab;
}

__global__ void ln_bwd_reduce_kernel(float* dw, float* db, const float* partial, int nrb, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float aw = 0.f, ab = 0.f;
  for (int rb = 0; rb < nrb; rb++) {
    aw += partial[(size_t)rb * 2 * C + c];
    ab += partial[(size_t)rb * 2 * C + C + c];
  }
  dw[c] += aw;
  db[c] += ab;
}

// The fused training backward. A CTA owns rows blockIdx.x, + gridDim.x, ... and thread t the
// float4 columns t + blockDim.x * i (i < V): the row's two sums are reduced over the CTA (one
// barrier per row, double-buffered), and each thread keeps its columns' dw, db and dbias sums in
// registers across rows. Every load of a row (dout, x and the dx it adds to) is issued before
// the barrier. Per element 16 bytes move instead of 30 for the kernels it replaces (dx 14, dw
// 6, bf16 copy of dx 6, bias sum 4). The partials: partial[blk][0 / C / 2C + c].
constexpr int kFusedBlocks = 384;  // fixed, so the summation order does not depend on the GPU
template <class P, int V>
__global__ void __launch_bounds__(256)
    ln_bwd_fused_kernel(float* dx, bf16* dx16, float* partial, const bf16* dout, const float* x,
                        const float* mean, const float* rstd, const P* w, int N, int C,
                        bool with_bias) {
  __shared__ float red[2][2][8];  // [row parity][sum][warp], <= 8 warps
  const int n4 = C / 4, lane = threadIdx.x & 31, warp = threadIdx.x >> 5,
            nwarps = blockDim.x >> 5;
  float4 wv[V], aw[V], ab[V], ad[V];
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int i = 0; i < V; i++) {
    const int j = threadIdx.x + blockDim.x * i;
    wv[i] = j < n4 ? load4<P>(w, j) : zero;
    aw[i] = ab[i] = ad[i] = zero;
  }
  int par = 0;
  for (int row = blockIdx.x; row < N; row += gridDim.x, par ^= 1) {
    const float m = mean[row], rs = rstd[row];
    const float4* xr = reinterpret_cast<const float4*>(x + (size_t)row * C);
    float4* dxr = reinterpret_cast<float4*>(dx + (size_t)row * C);
    const bf16* dr = dout + (size_t)row * C;
    float4 dn[V], xh[V], g[V];
    float s1 = 0.f, s2 = 0.f;
#pragma unroll
    for (int i = 0; i < V; i++) {
      const int j = threadIdx.x + blockDim.x * i;
      float4 d = zero, xv = zero;
      g[i] = zero;
      if (j < n4) {
        d = load_bf16x4(dr, j);
        xv = xr[j];
        g[i] = dxr[j];
      }
      dn[i] = make_float4(d.x * wv[i].x, d.y * wv[i].y, d.z * wv[i].z, d.w * wv[i].w);
      xh[i] = j < n4 ? make_float4((xv.x - m) * rs, (xv.y - m) * rs, (xv.z - m) * rs, (xv.w - m) * rs) : zero;
      aw[i].x += d.x * xh[i].x; aw[i].y += d.y * xh[i].y; aw[i].z += d.z * xh[i].z; aw[i].w += d.w * xh[i].w;
      ab[i].x += d.x; ab[i].y += d.y; ab[i].z += d.z; ab[i].w += d.w;
      s1 += sum4(dn[i]);
      s2 += (dn[i].x * xh[i].x + dn[i].y * xh[i].y) + (dn[i].z * xh[i].z + dn[i].w * xh[i].w);
    }
    s1 = warp_sum(s1);
    s2 = warp_sum(s2);
    if (lane == 0) {
      red[par][0][warp] = s1;
      red[par][1][warp] = s2;
    }
    // One barrier per row: a warp writes this parity again only two rows later, after every
    // warp has passed the next row's barrier and so finished reading this one.
    __syncthreads();
    s1 = s2 = 0.f;
    for (int k = 0; k < nwarps; k++) {
      s1 += red[par][0][k];
      s2 += red[par][1][k];
    }
    s1 /= C;
    s2 /= C;
#pragma unroll
    for (int i = 0; i < V; i++) {
      const int j = threadIdx.x + blockDim.x * i;
      if (j < n4) {
        g[i].x += rs * (dn[i].x - s1 - xh[i].x * s2);
        g[i].y += rs * (dn[i].y - s1 - xh[i].y * s2);
        g[i].z += rs * (dn[i].z - s1 - xh[i].z * s2);
        g[i].w += rs * (dn[i].w - s1 - xh[i].w * s2);
        dxr[j] = g[i];
        if (dx16) store_bf16x4(dx16 + (size_t)row * C, j, g[i]);  // may overwrite dout's row: read above
        ad[i].x += g[i].x; ad[i].y += g[i].y; ad[i].z += g[i].z; ad[i].w += g[i].w;
      }
    }
  }
  float4* pw = reinterpret_cast<float4*>(partial + (size_t)blockIdx.x * 3 * C);
#pragma unroll
  for (int i = 0; i < V; i++) {
    const int j = threadIdx.x + blockDim.x * i;
    if (j < n4) {
      pw[j] = aw[i];
      pw[n4 + j] = ab[i];
      if (with_bias) pw[2 * n4 + j] = ad[i];
    }
  }
}

// out[a][c] += sum over blk of partial[blk][a * C + c] for the arrays a < A, in a fixed order: a
// (32 columns) x (8 strides of the block index) CTA, then the 8 stride sums in order.
__global__ void __launch_bounds__(256)
    ln_bwd_fused_reduce_kernel(float* dw, float* db, float* dbias, const float* partial, int nblk, int C) {
  __shared__ float acc[8][33];
  const int cx = threadIdx.x & 31, ry = threadIdx.x >> 5;
  const int c = blockIdx.x * 32 + cx, a = blockIdx.y;
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;  // four loads in flight
  if (c < C) {
    const float* p = partial + (size_t)a * C + c;
    const size_t st = (size_t)3 * C;
    int b = ry;
    for (; b + 24 < nblk; b += 32) {
      s0 += p[b * st];
      s1 += p[(b + 8) * st];
      s2 += p[(b + 16) * st];
      s3 += p[(b + 24) * st];
    }
    for (; b < nblk; b += 8) s0 += p[b * st];
  }
  acc[ry][cx] = (s0 + s1) + (s2 + s3);
  __syncthreads();
  if (ry == 0 && c < C) {
    float t = 0.f;
    for (int r = 0; r < 8; r++) t += acc[r][cx];
    float* out = a == 0 ? dw : a == 1 ? db : dbias;
    out[c] += t;
  }
}

// Read per call (49 calls a step), so a test can run both paths in one process.
bool ln_fused_enabled() {
  const char* v = std::getenv("LCX_CUDA_LN_FUSED");
  return !(v && v[0] == '0');
}

}  // namespace

// float4s per lane for the register kernels (4, 8 or 16), or 0 for the scalar ones: C a multiple
// of 4 up to 2048 and every pointer aligned for 4-element vectors (16 bytes for fp32, 8 for
// bf16; a null pointer passes). Tiny test models' parameter offsets often are not.
bool aligned4(const float* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
bool aligned4(const bf16* p) { return reinterpret_cast<uintptr_t>(p) % 8 == 0; }
int vec_width(int C, bool aligned) {
  if (!aligned || C % 4 != 0 || C > 128 * 16) return 0;
  return C <= 128 * 4 ? 4 : C <= 128 * 8 ? 8 : 16;
}

size_t layernorm_backward_scratch(int C) {
  return std::max((size_t)kRowBlocks * 2 * C, (size_t)kFusedBlocks * 3 * C);
}

template <class P>
void layernorm_forward(bf16* out, float* mean, float* rstd, float* x, const P* add_bias,
                       const P* w, const P* b, int N, int C, float eps, cudaStream_t s) {
  if (N == 0) return;
  if (N <= 64 && C <= kLnRowThreads * kLnRowMax) {  // decoding: latency, not throughput
    launch_k(ln_fwd_row_kernel<P>, dim3(N), dim3(kLnRowThreads), 0, s, out, mean, rstd, x, add_bias, w, b, C, eps);
    return;
  }
  const int v4 = vec_width(C, aligned4(out) && aligned4(x) && aligned4(add_bias) && aligned4(w) && aligned4(b));
  const dim3 grid(ceil_div(N, 8)), block(256);
  switch (v4) {
    case 4: ln_fwd_vec_kernel<P, 4><<<grid, block, 0, s>>>(out, mean, rstd, x, add_bias, w, b, N, C, eps); break;
    case 8: ln_fwd_vec_kernel<P, 8><<<grid, block, 0, s>>>(out, mean, rstd, x, add_bias, w, b, N, C, eps); break;
    case 16: ln_fwd_vec_kernel<P, 16><<<grid, block, 0, s>>>(out, mean, rstd, x, add_bias, w, b, N, C, eps); break;
    default: ln_fwd_kernel<P><<<grid, block, 0, s>>>(out, mean, rstd, x, add_bias, w, b, N, C, eps);
  }
  LCX_LAUNCH_CHECK();
}

template <class P>
void layernorm_backward(float* dx, float* dw, float* db, bf16* dx16, float* dbias, float* scratch,
                        const bf16* dout, const float* x, const float* mean, const float* rstd,
                        const P* w, int N, int C, cudaStream_t s) {
  if (N == 0) return;
  const bool aligned = aligned4(dx) && aligned4(dx16) && aligned4(dout) && aligned4(x) && aligned4(w);
  const int n4 = C / 4;
  if (ln_fused_enabled() && aligned && C % 4 == 0 && n4 <= 4 * 256) {
    // V float4s per thread, at most 256 threads: 128 threads of 4 at C = 2048.
    const int V = n4 > 256 ? 4 : n4 > 64 ? 2 : 1;
    const int threads = ceil_div(ceil_div(n4, V), 32) * 32;
    const int nblk = N < kFusedBlocks ? N : kFusedBlocks;
    const bool with_bias = dbias != nullptr;
    switch (V) {
      case 4: ln_bwd_fused_kernel<P, 4><<<nblk, threads, 0, s>>>(dx, dx16, scratch, dout, x, mean, rstd, w, N, C, with_bias); break;
      case 2: ln_bwd_fused_kernel<P, 2><<<nblk, threads, 0, s>>>(dx, dx16, scratch, dout, x, mean, rstd, w, N, C, with_bias); break;
      default: ln_bwd_fused_kernel<P, 1><<<nblk, threads, 0, s>>>(dx, dx16, scratch, dout, x, mean, rstd, w, N, C, with_bias);
    }
    LCX_LAUNCH_CHECK();
    ln_bwd_fused_reduce_kernel<<<dim3(ceil_div(C, 32), with_bias ? 3 : 2), 256, 0, s>>>(dw, db, dbias, scratch, nblk, C);
    LCX_LAUNCH_CHECK();
    return;
  }
  const int v4 = vec_width(C, aligned4(dx) && aligned4(dout) && aligned4(x) && aligned4(w));
  const dim3 grid(ceil_div(N, 8)), block(256);
  switch (v4) {
    case 4: ln_bwd_dx_vec_kernel<P, 4><<<grid, block, 0, s>>>(dx, dout, x, mean, rstd, w, N, C); break;
    case 8: ln_bwd_dx_vec_kernel<P, 8><<<grid, block, 0, s>>>(dx, dout, x, mean, rstd, w, N, C); break;
    case 16: ln_bwd_dx_vec_kernel<P, 16><<<grid, block, 0, s>>>(dx, dout, x, mean, rstd, w, N, C); break;
    default: ln_bwd_dx_kernel<P><<<grid, block, 0, s>>>(dx, dout, x, mean, rstd, w, N, C);
  }
  LCX_LAUNCH_CHECK();
  const int nrb = N < kRowBlocks ? N : kRowBlocks;
  const int rows_per = ceil_div(N, nrb);
  ln_bwd_dw_kernel<<<dim3(ceil_div(C, 128), nrb), 128, 0, s>>>(scratch, dout, x, mean, rstd, N, C,
                                                                rows_per);
  LCX_LAUNCH_CHECK();
  ln_bwd_reduce_kernel<<<ceil_div(C, 128), 128, 0, s>>>(dw, db, scratch, nrb, C);
  LCX_LAUNCH_CHECK();
  // dout is consumed above, so dx16 may alias it.
  if (dx16) f32_to_bf16(dx16, dx, (size_t)N * C, s);
  if (dbias) bias_backward<float>(dbias, scratch, dx, N, C, s);
}

#define LCX_LN_INST(P)                                                                      \
  template void layernorm_forward<P>(bf16*, float*, float*, float*, const P*, const P*,     \
                                     const P*, int, int, float, cudaStream_t);              \
  template void layernorm_backward<P>(float*, float*, float*, bf16*, float*, float*,        \
                                      const bf16*, const float*, const float*,              \
                                      const float*, const P*, int, int, cudaStream_t);
LCX_LN_INST(float)
LCX_LN_INST(bf16)

}  // namespace lcx::cuda
