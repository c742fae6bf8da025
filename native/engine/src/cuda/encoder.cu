// Token + position embeddings. Forward: x (N,C) fp32 = wte[token] + wpe[pos], where pos restarts
// at each document start (positions come from the host, lcx::positions_for_row).
// Backward: a deterministic scatter-add. The host groups rows by the table row they read
// (tokens repeat, positions repeat across documents), and one block sums each group in a fixed
// order, so gradients are bit-identical run to run (atomics would not be).
#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

template <class P>
__global__ void encoder_fwd_kernel(float* x, const int32_t* tok, const int32_t* pos, const P* wte,
                                   const P* wpe, int C) {
  const int row = blockIdx.x;
  const P* te = wte + (size_t)tok[row] * C;
  const P* pe = wpe + (size_t)pos[row] * C;
  float* xr = x + (size_t)row * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) xr[c] = to_f(te[c]) + to_f(pe[c]);
}

__global__ void embedding_bwd_kernel(float* dtable, const float* dx, const int32_t* uniq,
                                     const int32_t* starts, const int32_t* rows, int C) {
  const int u = blockIdx.x;
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0.f;
  for (int i = starts[u]; i < starts[u + 1]; i++) acc += dx[(size_t)rows[i] * C + c];
  dtable[(size_t)uniq[u] * C + c] += acc;
}

}  // namespace

template <class P>
void encoder_forward(float* x, const int32_t* tokens, const int32_t* pos, const P* wte,
                     const P* wpe, int N, int C, cudaStream_t s) {
  if (N == 0) return;
  encoder_fwd_kernel<P><<<N, 256, 0, s>>>(x, tokens, pos, wte, wpe, C);
  LCX_LAUNCH_CHECK();
}
template void encoder_forward<float>(float*, const int32_t*, const int32_t*, const float*,
                                     const float*, int, int, cudaStream_t);
template void encoder_forward<bf16>(float*, const int32_t*, const int32_t*, const bf16*,
                                    const bf16*, int, int, cudaStream_t);

void embedding_backward(float* dtable, const float* dx, const int32_t* uniq, const int32_t* starts,
                        const int32_t* rows, int U, int C, cudaStream_t s) {
  if (U == 0) return;
  dim3 grid(U, ceil_div(C, 256));
  embedding_bwd_kernel<<<grid, 256, 0, s>>>(dtable, dx, uniq, starts, rows, C);
  LCX_LAUNCH_CHECK();
}

}  // namespace lcx::cuda
