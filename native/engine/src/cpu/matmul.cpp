// Linear layers: out (N,OC) = inp (N,IC) . W^T + b, with W stored (OC,IC) as in the canonical
// layout, and the two products of its backward.
//
// No BLAS is available, so each product is written as a small register tile (a few rows times
// a few outputs, whose accumulators stay in registers for a whole slice of the inner dimension)
// inside cache blocks (a slice of W that stays in L2 while several row tiles reuse it). The
// tiles are plain loops over fixed-size arrays: GCC vectorises the innermost one.
//
// Every output of the forward is accumulated in the same order (bias, then k = 0, 1, 2, ...)
// whatever tile it falls in, so one row gives bit-identical results in a batch of 1000 rows
// and alone in the KV-cached decoder. Each output is owned by one task, so results do not
// depend on the number of threads either.
#include <algorithm>
#include <vector>

#include "kernels.hpp"

namespace lcx::cpu {

namespace {

constexpr int ROW_BLOCK = 64;   // rows per task
constexpr int COL_BLOCK = 64;   // outputs (or inputs) per task
constexpr int K_BLOCK = 256;    // slice of the reduction dimension kept hot in cache
constexpr int ROW_TILE = 8;     // forward: rows per register tile (two SSE registers)
constexpr int OUT_TILE = 4;     // forward: outputs per register tile
constexpr int DROW_TILE = 4;    // backward: rows (or outputs) per register tile
constexpr int VEC = 8;          // backward: contiguous columns per register tile

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Forward tile: R rows x J outputs over kc inputs. xt is the rows' inputs packed (kc, R) so the
// innermost loop reads R consecutive floats; w points at J weight rows (stride ldw). The tile
// starts from bias (first slice) or from what out already holds (later slices).
template <int R, int J>
inline void fwd_tile(float* out, int ldo, const float* xt, const float* w, int ldw, int kc,
                     const float* bias, bool first) {
  float acc[J][R];
  for (int j = 0; j < J; j++)
    for (int r = 0; r < R; r++)
      acc[j][r] = first ? (bias ? bias[j] : 0.0f) : out[(size_t)r * ldo + j];
  for (int k = 0; k < kc; k++) {
    const float* x = xt + (size_t)k * R;
    for (int j = 0; j < J; j++) {
      const float wj = w[(size_t)j * ldw + k];
      for (int r = 0; r < R; r++) acc[j][r] += wj * x[r];
    }
  }
  for (int j = 0; j < J; j++)
    for (int r = 0; r < R; r++) out[(size_t)r * ldo + j] = acc[j][r];
}

// Backward tile for dinp: R rows x W inputs, reduced over oc outputs.
// dinp[r][c] (+)= sum_o dout[r][o] * w[o][c]
template <int R, int W>
inline void dinp_tile(float* dinp, int ldi, const float* dout, int ldd, const float* w, int ldw,
                      int oc, bool first) {
  float acc[R][W];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < W; c++) acc[r][c] = first ? 0.0f : dinp[(size_t)r * ldi + c];
  for (int o = 0; o < oc; o++) {
    const float* wr = w + (size_t)o * ldw;
    for (int r = 0; r < R; r++) {
      const float d = dout[(size_t)r * ldd + o];
      for (int c = 0; c < W; c++) acc[r][c] += d * wr[c];
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < W; c++) dinp[(size_t)r * ldi + c] = acc[r][c];
}

// Backward tile for dweight: J outputs x W inputs, reduced over nc rows.
// dw[j][c] += sum_n dout[n][j] * inp[n][c]
template <int J, int W>
inline void dw_tile(float* dw, int ldw, const float* dout, int ldd, const float* inp, int ldi,
                    int nc) {
  float acc[J][W];
  for (int j = 0; j < J; j++)
    for (int c = 0; c < W; c++) acc[j][c] = dw[(size_t)j * ldw + c];
  for (int n = 0; n < nc; n++) {
    const float* x = inp + (size_t)n * ldi;
    for (int j = 0; j < J; j++) {
      const float d = dout[(size_t)n * ldd + j];
      for (int c = 0; c < W; c++) acc[j][c] += d * x[c];
    }
  }
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
              fwd_tile<ROW_TILE, OUT_TILE>(out + (size_t)n * OC + o, OC, xt.data(),
                                           weight + (size_t)o * IC + k0, IC, kc,
                                           bias ? bias + o : nullptr, first);
            for (; o < o1; o++)
              fwd_tile<ROW_TILE, 1>(out + (size_t)n * OC + o, OC, xt.data(),
                                    weight + (size_t)o * IC + k0, IC, kc,
                                    bias ? bias + o : nullptr, first);
          }
          // Leftover rows (and the decoder's single row): a row is its own (kc,1) packing.
          for (; n < n1; n++) {
            const float* x = inp + (size_t)n * IC + k0;
            int o = o0;
            for (; o + 8 <= o1; o += 8)
              fwd_tile<1, 8>(out + (size_t)n * OC + o, OC, x, weight + (size_t)o * IC + k0, IC,
                             kc, bias ? bias + o : nullptr, first);
            for (; o < o1; o++)
              fwd_tile<1, 1>(out + (size_t)n * OC + o, OC, x, weight + (size_t)o * IC + k0, IC,
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
              dinp_tile<DROW_TILE, VEC>(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc,
                                        first);
            for (; i < i1; i++)
              dinp_tile<DROW_TILE, 1>(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc,
                                      first);
          }
          for (; n < n1; n++) {
            const float* d = dout + (size_t)n * OC + o0;
            int i = i0;
            for (; i + VEC <= i1; i += VEC)
              dinp_tile<1, VEC>(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc, first);
            for (; i < i1; i++)
              dinp_tile<1, 1>(dinp + (size_t)n * IC + i, IC, d, OC, w + i, IC, oc, first);
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
            dw_tile<DROW_TILE, VEC>(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
          for (; i < i1; i++)
            dw_tile<DROW_TILE, 1>(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
        }
        for (; o < o1; o++) {
          int i = i0;
          for (; i + VEC <= i1; i += VEC)
            dw_tile<1, VEC>(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
          for (; i < i1; i++)
            dw_tile<1, 1>(dweight + (size_t)o * IC + i, IC, d + o, OC, x + i, IC, nc);
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
