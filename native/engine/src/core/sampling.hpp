// Choosing the next token from logits: repetition penalty, temperature, top-k, top-p, in the
// order Hugging Face applies them, with a small deterministic PRNG so a seed gives the same
// text on every machine and backend.
#pragma once
#include <cstdint>

#include "longctx.h"

namespace lcx {

// Returns the chosen token id in [0, V).
// - repetition_penalty (CTRL, as HF): for each distinct token in context[0..n_context), a
//   positive logit is divided by the penalty, a negative one multiplied. 1 = off.
// - temperature <= 0: greedy argmax (lowest id on ties); nothing random is drawn.
// - top_k > 0: only the k highest logits stay candidates.
// - top_p < 1: the smallest set of highest-probability tokens whose mass reaches top_p (always
//   at least one token).
// *rng_state is the PRNG state: set it to the seed once (any value, 0 included) and pass the
// same variable for every token of a generation. Throws LCX_ERR_ARG on bad settings.
int32_t sample_token(const float* logits, int V, const lcx_sampling& s, const int32_t* context,
                     int n_context, uint64_t* rng_state);

// splitmix64: advances *state and returns 64 random bits.
uint64_t next_random(uint64_t* state);

}  // namespace lcx
