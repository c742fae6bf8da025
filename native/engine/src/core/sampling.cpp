// Sampling the next token (see sampling.hpp for the contract).
#include "sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "error.hpp"

namespace lcx {

uint64_t next_random(uint64_t* state) {
  // splitmix64 (Steele, Lea, Flood): every state, 0 included, gives a well-mixed sequence.
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

// Uniform in [0, 1) with 53 random bits.
double next_uniform(uint64_t* state) { return (double)(next_random(state) >> 11) * 0x1.0p-53; }

int argmax(const std::vector<float>& x) {
  int best = 0;
  for (int i = 1; i < (int)x.size(); i++)
    if (x[i] > x[best]) best = i;
  return best;
}

}  // namespace

int32_t sample_token(const float* logits, int V, const lcx_sampling& s, const int32_t* context,
                     int n_context, uint64_t* rng_state) {
  if (V < 1) fail(LCX_ERR_ARG, "sampling: vocabulary size must be positive, got %d", V);
  if (std::isnan(s.temperature))
    fail(LCX_ERR_ARG, "sampling: temperature is NaN");
  if (s.top_k < 0) fail(LCX_ERR_ARG, "sampling: top_k must be >= 0 (0 = off), got %d", s.top_k);
  if (!(s.top_p >= 0.0f))
    fail(LCX_ERR_ARG, "sampling: top_p must be in [0, 1] (1 = off), got %g", (double)s.top_p);
  if (!(s.repetition_penalty > 0.0f))
    fail(LCX_ERR_ARG, "sampling: repetition_penalty must be > 0 (1 = off), got %g",
         (double)s.repetition_penalty);

  std::vector<float> z(logits, logits + V);
  if (s.repetition_penalty != 1.0f && context) {
    std::vector<char> seen(V, 0);
    for (int i = 0; i < n_context; i++)
      if (context[i] >= 0 && context[i] < V) seen[context[i]] = 1;
    for (int t = 0; t < V; t++)
      if (seen[t]) z[t] = z[t] > 0.0f ? z[t] / s.repetition_penalty : z[t] * s.repetition_penalty;
  }
  if (s.temperature <= 0.0f) return argmax(z);

  // Candidates sorted by logit, highest first (ties: lower id first, so results are stable).
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  auto higher = [&z](int a, int b) { return z[a] > z[b] || (z[a] == z[b] && a < b); };
  int n = V;
  if (s.top_k > 0 && s.top_k < V) {
    std::partial_sort(order.begin(), order.begin() + s.top_k, order.end(), higher);
    n = s.top_k;
  } else {
    std::sort(order.begin(), order.end(), higher);
  }

  // Softmax of logit / temperature over the candidates, in double for the top-p sums.
  std::vector<double> p(n);
  const double mx = z[order[0]];
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    p[i] = std::exp(((double)z[order[i]] - mx) / s.temperature);
    sum += p[i];
  }
  if (s.top_p < 1.0f) {
    // Keep a token while the mass of the tokens above it is still below top_p: the first one
    // always stays, and the set is the smallest that reaches top_p.
    double above = 0.0;
    int keep = 0;
    while (keep < n && above < s.top_p * sum) above += p[keep++];
    n = std::max(keep, 1);
    sum = 0.0;
    for (int i = 0; i < n; i++) sum += p[i];
  }
  const double r = next_uniform(rng_state) * sum;
  double acc = 0.0;
  for (int i = 0; i < n; i++) {
    acc += p[i];
    if (r < acc) return order[i];
  }
  return order[n - 1];  // r within rounding of sum
}

}  // namespace lcx
