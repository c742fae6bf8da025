// Host-side operations on the canonical fp32 parameter vector (longctx.h): the GPT-2
// initialisation of a fresh model and the growth of the position embeddings. They run on the
// host so that every backend starts from bit-identical numbers for the same seed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "longctx.h"

namespace lcx {

// n values ~ N(0, std^2), a pure function of (seed, stream, element index): the same numbers
// whatever the thread count. Box-Muller over a counter-based splitmix64 stream.
void fill_normal(float* out, size_t n, float std, uint64_t seed, uint64_t stream);

// GPT-2 initialisation (as in HF GPT2PreTrainedModel._init_weights and llm.c): wte, wpe and the
// matrices ~ N(0, 0.02); the residual projections attprojw and fcprojw ~ N(0, 0.02/sqrt(2L));
// biases 0; LayerNorm weight 1, bias 0. Tensor i uses stream i of the seed.
void init_gpt2_params(const lcx_config& cfg, uint64_t seed, float* params);

// Grows wpe from old_cfg.n_positions to n_new rows inside params (canonical layout of old_cfg on
// entry, of old_cfg with n_positions = n_new on return; the tensors after wpe move up).
//   tile:        row p = old row (p mod n_old); rows < n_old are unchanged bit for bit.
//   interpolate: row p = (1 - f) * old[i] + f * old[min(i + 1, n_old - 1)] where
//                x = p * (n_old - 1) / (n_new - 1) (in double), i = floor(x), f = x - i;
//                so row 0 and row n_new - 1 equal old rows 0 and n_old - 1 exactly, and the
//                rows in between are a linear resampling (rows < n_old do change).
//   random:      rows < n_old unchanged; new rows ~ N(0, 0.02) from fill_normal(seed, stream
//                kRandomPositionStream) over the new rows in order.
// n_new < n_old or an unknown mode is LCX_ERR_ARG. n_new == n_old leaves params as they are.
constexpr uint64_t kRandomPositionStream = 0x706f73;  // "pos"
void extend_position_embeddings(std::vector<float>& params, const lcx_config& old_cfg, int n_new,
                                int mode, uint64_t seed);

}  // namespace lcx
