// Linear layers: out (N,OC) = inp (N,IC) . W^T + b, with W stored (OC,IC) as in the canonical
// layout, and the two products of its backward.
//
// No BLAS is available, so each product is written as a small register tile (a few rows times
// a few outputs, whose accumulators stay in registers for a whole slice of the inner dimension)
// inside cache blocks (a slice of W that stays in L2 while several row tiles reuse it). The
// main tiles use 4-float vectors (simd.hpp); the edges are plain loops.
//
// Every output of the forward is accumulated in the same order (per slice of K_BLOCK inputs a
// sum from k = 0 up, added to the bias or the previous slices) whatever tile it falls in, so one
// row gives bit-identical results in a batch of 1000 rows and alone in the KV-cached decoder. Each output is owned by one task, so results do not
// depend on the number of threads either.
#include <algorithm>
#include <vector>

#include "kernels.hpp"
#include "simd.hpp"

namespace lcx::cpu {

namespace {

constexpr int ROW_BLOCK = 64;   // rows per task
constexpr int COL_BLOCK = 64;   // outputs (or inputs) per task
constexpr int K_BLOCK = 256;    // slice of the reduction dimension kept hot in cache
constexpr int ROW_TILE = 8;     // forward: rows per register tile (fwd_tile_8x4)
constexpr int OUT_TILE = 4;     // forward: outputs per register tile
constexpr int DROW_TILE = 4;    // backward: rows (or outputs) per register tile (*_4x8)
constexpr int VEC = 8;          // backward: contiguous columns per register tile

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// ---- forward: out[r][j] = bias[j] + sum_k x[r][k] w[j][k] -------------------------------------
// The rows' inputs come packed (kc, R) in xt, so each k reads R consecutive floats; w points at
// the tile's weight rows (stride ldw). The slice's sum starts at zero and is then added to the
// bias (first slice) or to what out holds (later slices): the same sequence of float operations
// for every output, in the vector tile and in the scalar edge tiles alike.

// 8 rows x 4 outputs: 8 vector accumulators.
inline void fwd_tile_8x4(float* out, int ldo, const float* xt, const float* w, int ldw, int kc,
                         const float* bias, bool first) {
  f4 acc[4][2] = {};
  for (int k = 0; k < kc; k++) {
    const f4 x0 = load4(xt + (size_t)k * 8), x1 = load4(xt + (size_t)k * 8 + 4);
    for (int j = 0; j < 4; j++) {
      const float wj = w[(size_t)j * ldw + k];
      acc[j][0] += wj * x0;
      acc[j][1] += wj * x1;
    }
  }
  for (int j = 0; j < 4; j++) {
    float a[8];
    store4(a, acc[j][0]);
    store4(a + 4, acc[j][1]);
    for (int r = 0; r < 8; r++) {
      float* o = out + (size_t)r * ldo + j;
      *o = (first ? (bias ? bias[j] : 0.0f) : *o) + a[r];
    }
  }
}

// Edges (leftover outputs, leftover rows, the decoder's single row): R rows x J outputs.
template <int R, int J>
inline void fwd_tile_edge(float* out, int ldo, const float* xt, const float* w, int ldw, int kc,
                          const float* bias, bool first) {
  float acc[J][R] = {};
  for (int k = 0; k < kc; k++)
    for (int j = 0; j < J; j++)
      for (int r = 0; r < R; r++) acc[j][r] += w[(size_t)j * ldw + k] * xt[(size_t)k * R + r];
  for (int j = 0; j < J; j++)
    for (int r = 0; r < R; r++) {
      float* o = out + (size_t)r * ldo + j;
      *o = (first ? (bias ? bias[j] : 0.0f) : *o) + acc[j][r];
    }
}

// ---- dinp[r][c] (+)= sum_o dout[r][o] w[o][c] ----------------------------------------------

// 4 rows x 8 inputs.
inline void dinp_tile_4x8(float* dinp, int ldi, const float* dout, int ldd, const float* w,
                          int ldw, int oc, bool first) {
  f4 acc[4][2] = {};
  for (int o = 0; o < oc; o++) {
    const f4 w0 = load4(w + (size_t)o * ldw), w1 = load4(w + (size_t)o * ldw + 4);
    for (int r = 0; r < 4; r++) {
      const float d = dout[(size_t)r * ldd + o];
      acc[r][0] += d * w0;
      acc[r][1] += d * w1;
    }
  }
  for (int r = 0; r < 4; r++) {
    float* p = dinp + (size_t)r * ldi;
    store4(p, first ? acc[r][0] : load4(p) + acc[r][0]);
    store4(p + 4, first ? acc[r][1] : load4(p + 4) + acc[r][1]);
  }
}

template <int R, int W>
inline void dinp_tile_edge(float* dinp, int ldi, const float* dout, int ldd, const float* w,
                           int ldw, int oc, bool first) {
  float acc[R][W] = {};
  for (int o = 0; o < oc; o++)
    for (int r = 0; r < R; r++)
      for (int c = 0; c < W; c++) acc[r][c] += dout[(size_t)r * ldd + o] * w[(size_t)o * ldw + c];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < W; c++) {
      float* d = dinp + (size_t)r * ldi + c;
      *d = (first ? 0.0f : *d) + acc[r][c];
    }
}

// ---- dw[j][c] += sum_n dout[n][j] inp[n][c] ----------------------------------------------

// 4 outputs x 8 inputs.
inline void dw_tile_4x8(float* dw, int ldw, const float* dout, int ldd, const float* inp, int ldi,
                        int nc) {
  f4 acc[4][2];
  for (int j = 0; j < 4; j++) {
    acc[j][0] = load4(dw + (size_t)j * ldw);
    acc[j][1] = load4(dw + (size_t)j * ldw + 4);
  }
  for (int n = 0; n < nc; n++) {
    const f4 x0 = load4(inp + (size_t)n * ldi), x1 = load4(inp + (size_t)n * ldi + 4);
    for (int j = 0; j < 4; j++) {
      const float d = dout[(size_t)n * ldd + j];
      acc[j][0] += d * x0;
      acc[j][1] += d * x1;
    }
  }
  for (int j = 0; j < 4; j++) {
    store4(dw + (size_t)j * ldw, acc[j][0]);
    store4(dw + (size_t)j * ldw + 4, acc[j][1]);
  }
}

template <int J, int W>
inline void dw_tile_edge(float* dw, int ldw, const float* dout, int ldd, const float* inp, int ldi,
                         int nc) {
  float acc[J][W];
  for (int j = 0; j < J; j++)
    for (int c = 0; c < W; c++) acc[j][c] = dw[(size_t)j * ldw + c];
  for (int n = 0; n < nc; n++)
    for (int j = 0; j < J; j++)
      for (int c = 0; c < W; c++) acc[j][c] += dout[(size_t)n * ldd + j] * inp[(size_t)n * ldi + c];
  for (int j = 0; j < J; j++)
    for (int c = 0; c < W; c++) dw[(size_t)j * ldw + c] = acc[j][c];
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int IC, int OC) {
  // out is (N,OC), inp (N,IC), weight (OC,IC), bias (OC)
  const int row_blocks = ceil_div(N, ROW_BLOCK), col_blocks = ceil_div(OC, COL_BLOCK);
  const bool threads = (long)N * IC * OC >= kParallelMinWork;
#pragma omp parallel if (threads)
  {
    std::vector<float> xt((size_t)K_BLOCK * ROW_TILE);
#pragma omp for collapse(2) schedule(static)
    for (int rb = 0; rb < row_blocks; rb++) {
      for (int cb = 0; cb < col_blocks; cb++) {
        const int n0 = rb * ROW_BLOCK, n1 = std::min(N, n0 + ROW_BLOCK);
        const int o0 = cb * COL_BLOCK, o1 = std::min(OC, o0 + COL_BLOCK);
        for (int k0 = 0; k0 < IC; k0 += K_BLOCK) {
          const int kc = std::min(K_BLOCK, IC - k0);
          const bool first = k0 == 0;
          int n = n0;
          for (; n + ROW_TILE <= n1; n += ROW_TILE) {
            for (int k = 0; k < kc; k++)
              for (int r = 0; r < ROW_TILE; r++)
                xt[(size_t)k * ROW_TILE + r] = inp[(size_t)(n + r) * IC + k0 + k];
            int o = o0;
            for (; o + OUT_TILE <= o1; o += OUT_TILE)
              fwd_tile_8x4(out + (size_t)n * OC + o, OC, xt.data(),
                                           weight + (size_t)o * IC + k0, IC, kc,
                                           bias ? bias + o : nullptr, first);
            for (; o < o1; o++)
              fwd_tile_edge<ROW_TILE, 1>(out + (size_t)n * OC + o, OC, xt.data(),
                                    weight + (size_t)o * IC + k0, IC, kc,
                                    bias ? bias + o : nullptr, first);
          }
          // Leftover rows (and the decoder's single row): a row is its own (kc,1) packing.
          for (; n < n1; n++) {
            const float* x = inp + (size_t)n * IC + k0;
            int o = o0;
            for (; o + 8 <= o1; o += 8)
              fwd_tile_edge<1, 8>(out + (size_t)n * OC + o, OC, x, weight + (size_t)o * IC + k0, IC,
                             kc, bias ? bias + o : nullptr, first);
            for (; o < o1; o++)
              fwd_tile_edge<1, 1>(out + (size_t)n * OC + o, OC, x, weight + (size_t)o * IC + k0, IC,
                             kc, bias ? bias + o : nullptr, first);
          }
        }
      }
    }
  }
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int N, int IC, int OC) {
  // dout is (N,OC), inp (N,IC), weight (OC,IC)
  const bool threads = (long)N * IC * OC >= kParallelMinWork;
  if (dinp) {
    // dinp (N,IC) = dout (N,OC) . weight (OC,IC)
    const int row_blocks = ceil_div(N, ROW_BLOCK), col_blocks = ceil_div(IC, COL_BLOCK);
#pragma omp parallel for collapse(2) schedule(static) if (threads)
    for (int rb = 0; rb < row_blocks; rb++) {
      for (int cb = 0; cb < col_blocks; cb++) {
        const int n0 = rb * ROW_BLOCK, n1 = std::min(N, n0 + ROW_BLOCK);
        const int i0 = cb * COL_BLOCK, i1 = std::min(IC, i0 + COL_BLOCK);
        for (int o0 = 0; o0 < OC; o0 += K_BLOCK) {
          const int oc = std::min(K_BLOCK, OC - o0);
          const bool first = o0 == 0;
          const float* w = weight + (size_t)o0 * IC;
          int n = n0;
          for (; n + DROW_TILE <= n1; n += DROW_TILE) {
            const float* d = dout + (size_t)n * OC + o0;
            int i = i0;
            for (; i + VEC <= i1; i += VEC)
              dinp_tile_4x8(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc,
                                        first);
            for (; i < i1; i++)
              dinp_tile_edge<DROW_TILE, 1>(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc,
                                      first);
          }
          for (; n < n1; n++) {
            const float* d = dout + (size_t)n * OC + o0;
            int i = i0;
            for (; i + VEC <= i1; i += VEC)
              dinp_tile_edge<1, VEC>(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc, first);
            for (; i < i1; i++)
              dinp_tile_edge<1, 1>(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc, first);
          }
        }
      }
    }
  }

  // dweight (OC,IC) += dout^T (OC,N) . inp (N,IC)
  const int out_blocks = ceil_div(OC, COL_BLOCK), in_blocks = ceil_div(IC, COL_BLOCK);
#pragma omp parallel for collapse(2) schedule(static) if (threads)
  for (int ob = 0; ob < out_blocks; ob++) {
    for (int ib = 0; ib < in_blocks; ib++) {
      const int o0 = ob * COL_BLOCK, o1 = std::min(OC, o0 + COL_BLOCK);
      const int i0 = ib * COL_BLOCK, i1 = std::min(IC, i0 + COL_BLOCK);
      for (int n0 = 0; n0 < N; n0 += K_BLOCK) {
        const int nc = std::min(K_BLOCK, N - n0);
        const float* d = dout + (size_t)n0 * OC;
        const float* x = inp + (size_t)n0 * IC;
        int o = o0;
        for (; o + DROW_TILE <= o1; o += DROW_TILE) {
          int i = i0;
          for (; i + VEC <= i1; i += VEC)
            dw_tile_4x8(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
          for (; i < i1; i++)
            dw_tile_edge<DROW_TILE, 1>(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
        }
        for (; o < o1; o++) {
          int i = i0;
          for (; i + VEC <= i1; i += VEC)
            dw_tile_edge<1, VEC>(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
          for (; i < i1; i++)
            dw_tile_edge<1, 1>(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
        }
      }
    }
  }

  if (dbias) {
    // dbias (OC) += sum over rows of dout
#pragma omp parallel for schedule(static) if (threads)
    for (int ob = 0; ob < out_blocks; ob++) {
      const int o0 = ob * COL_BLOCK, o1 = std::min(OC, o0 + COL_BLOCK);
      float acc[COL_BLOCK] = {0};
      for (int n = 0; n < N; n++)
        for (int o = o0; o < o1; o++) acc[o - o0] += dout[(size_t)n * OC + o];
      for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
    }
  }
}

}  // namespace lcx::cpu
