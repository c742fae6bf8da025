// KV-cached generation against full recompute, for every attention pattern, and the sampler.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/sampling.hpp"
#include "testing.hpp"
#include "tiny_model.hpp"

namespace {

constexpr int V = 29, C = 16, NH = 4, L = 2, F = 24, NPOS = 40;

lcx_config make(int kind, int window) {
  lcx_config c = tiny::config(V, C, NH, L, F, NPOS);
  tiny::set_all_layers(c, kind, window);
  c.sparse = lcx_sparse_config{3, 3, 1, 1, 3, 1, 0};  // block 3, 3 local blocks, 3 patterns
  return c;
}

// Feeds a prompt, then one token at a time, and after every feed compares the cached logits
// with the last row of a full forward over the whole sequence so far.
void cached_equals_recompute(const char* name, const lcx_config& c) {
  const auto params = tiny::random_params(c, 17);
  auto be = lcx::make_cpu_backend(c);
  be->set_params(params.data());
  const auto seq = tiny::random_tokens(NPOS, V, 23);
  auto gen = be->gen_create(NPOS);
  CHECK_EQ(gen->capacity(), NPOS);

  std::vector<float> cached(V), full((size_t)NPOS * V);
  double worst = 0;
  bool bitwise = true;
  int t = 0;
  for (int step = 0; t < NPOS; step++) {
    const int n = step == 0 ? 7 : (step == 1 ? 2 : 1);  // prefill, a pair, then single tokens
    gen->feed(seq.data() + t, n, cached.data());
    t += n;
    CHECK_EQ(gen->length(), t);
    be->forward({seq.data(), nullptr, nullptr, 1, t}, nullptr, full.data(), nullptr);
    const float* last = full.data() + (size_t)(t - 1) * V;
    for (int i = 0; i < V; i++) {
      worst = std::max(worst, (double)std::fabs(cached[i] - last[i]));
      bitwise &= cached[i] == last[i];
    }
  }
  testing::note("%-8s max |cached - recomputed| = %.2e over %d steps%s", name, worst, NPOS,
                bitwise ? " (bit-identical)" : "");
  CHECK(worst <= 1e-5);
  CHECK_THROWS(LCX_ERR_ARG, "KV cache full", gen->feed(seq.data(), 1, cached.data()));

  // reset() starts over: the same prompt gives the same logits as the first time.
  gen->reset();
  CHECK_EQ(gen->length(), 0);
  std::vector<float> again(V), first(V);
  gen->feed(seq.data(), 7, again.data());
  be->forward({seq.data(), nullptr, nullptr, 1, 7}, nullptr, full.data(), nullptr);
  std::copy_n(full.data() + 6 * V, V, first.data());
  CHECK(again == first);
}

}  // namespace

TEST(kv_cache_dense) { cached_equals_recompute("dense", make(LCX_ATTN_DENSE, 0)); }
TEST(kv_cache_window) { cached_equals_recompute("window5", make(LCX_ATTN_WINDOW, 5)); }
TEST(kv_cache_sparse) { cached_equals_recompute("sparse", make(LCX_ATTN_SPARSE, 0)); }
TEST(kv_cache_mix) {
  lcx_config c = make(LCX_ATTN_SPARSE, 0);
  c.attn_kind[1] = LCX_ATTN_WINDOW;
  c.attn_window[1] = 4;
  cached_equals_recompute("mix", c);
}

TEST(kv_cache_errors) {
  const lcx_config c = make(LCX_ATTN_DENSE, 0);
  auto be = lcx::make_cpu_backend(c);
  const auto params = tiny::random_params(c, 1);
  be->set_params(params.data());
  CHECK_THROWS(LCX_ERR_ARG, "KV cache size", be->gen_create(NPOS + 1));
  CHECK_THROWS(LCX_ERR_ARG, "KV cache size", be->gen_create(0));
  auto gen = be->gen_create(8);
  const int32_t bad = V;
  CHECK_THROWS(LCX_ERR_ARG, "outside the vocabulary", gen->feed(&bad, 1, nullptr));
  CHECK_EQ(gen->length(), 0);
  // A cache made before configure() (extendPositions, set_attention) must not be used.
  be->configure(c);
  const int32_t ok = 1;
  CHECK_THROWS(LCX_ERR_ARG, "create a new one", gen->feed(&ok, 1, nullptr));
}

// ---- sampling --------------------------------------------------------------------------------

namespace {
lcx_sampling sampling(float temperature, int top_k = 0, float top_p = 1.0f, float rep = 1.0f,
                      uint64_t seed = 1) {
  return lcx_sampling{temperature, top_k, top_p, rep, seed};
}
std::vector<float> random_logits(int n, uint64_t seed) {
  tiny::Rng rng(seed);
  std::vector<float> z(n);
  for (auto& x : z) x = 2.0f * rng.normal();
  return z;
}
int argmax(const std::vector<float>& z) {
  return (int)(std::max_element(z.begin(), z.end()) - z.begin());
}
}  // namespace

TEST(greedy_is_argmax) {
  for (uint64_t s = 0; s < 50; s++) {
    const auto z = random_logits(100, s);
    uint64_t rng = s;
    CHECK_EQ(lcx::sample_token(z.data(), 100, sampling(0.0f), nullptr, 0, &rng), argmax(z));
    CHECK_EQ(rng, s);  // greedy draws nothing
  }
}

TEST(top_k_one_is_greedy) {
  for (uint64_t s = 0; s < 50; s++) {
    const auto z = random_logits(100, s + 1000);
    uint64_t rng = s;
    CHECK_EQ(lcx::sample_token(z.data(), 100, sampling(1.5f, 1), nullptr, 0, &rng), argmax(z));
  }
}

TEST(same_seed_same_tokens) {
  const auto z = random_logits(50, 3);
  auto draw = [&](uint64_t seed) {
    uint64_t rng = seed;
    std::vector<int> out;
    for (int i = 0; i < 64; i++)
      out.push_back(lcx::sample_token(z.data(), 50, sampling(2.0f, 20, 0.95f), nullptr, 0, &rng));
    return out;
  };
  CHECK(draw(42) == draw(42));
  CHECK(draw(42) != draw(43));
}

// Frequencies follow softmax(z / T): p = (0.25, 0.75) for z = (0, ln 3) at T = 1, and at T = 2
// p1 = sqrt(3) / (1 + sqrt(3)) = 0.634.
TEST(sampling_follows_softmax_with_temperature) {
  const float z[2] = {0.0f, std::log(3.0f)};
  for (float temp : {1.0f, 2.0f}) {
    uint64_t rng = 7;
    int ones = 0;
    const int n = 40000;
    for (int i = 0; i < n; i++) ones += lcx::sample_token(z, 2, sampling(temp), nullptr, 0, &rng);
    const double want = temp == 1.0f ? 0.75 : std::sqrt(3.0) / (1 + std::sqrt(3.0));
    testing::note("T=%.0f: frequency of token 1 = %.4f (expected %.4f)", temp, (double)ones / n, want);
    CHECK_NEAR((double)ones / n, want, 0.01);
  }
}

// probabilities (0.6, 0.3, 0.1): top_p 0.5 keeps only the first, 0.8 the first two, and a
// top_p of 0 still keeps one token.
TEST(top_p_keeps_smallest_set_and_at_least_one) {
  const float z[3] = {std::log(0.6f), std::log(0.3f), std::log(0.1f)};
  std::map<int, int> seen_half, seen_80, seen_zero;
  uint64_t rng = 5;
  for (int i = 0; i < 4000; i++) {
    seen_half[lcx::sample_token(z, 3, sampling(1.0f, 0, 0.5f), nullptr, 0, &rng)]++;
    seen_80[lcx::sample_token(z, 3, sampling(1.0f, 0, 0.8f), nullptr, 0, &rng)]++;
    seen_zero[lcx::sample_token(z, 3, sampling(1.0f, 0, 0.0f), nullptr, 0, &rng)]++;
  }
  CHECK(seen_half.size() == 1 && seen_half.count(0) == 1);
  CHECK(seen_zero.size() == 1 && seen_zero.count(0) == 1);
  CHECK(seen_80.size() == 2 && seen_80.count(0) == 1 && seen_80.count(1) == 1);
  CHECK_NEAR(seen_80[0] / 4000.0, 0.6 / 0.9, 0.03);

  // Mass exactly equal to top_p: two tokens of 0.5 and top_p 0.5 keep one (HF removes tokens
  // whose ascending cumulative mass is <= 1 - top_p); ties go to the lower id.
  const float even[2] = {0.0f, 0.0f};
  for (int i = 0; i < 200; i++)
    CHECK_EQ(lcx::sample_token(even, 2, sampling(1.0f, 0, 0.5f), nullptr, 0, &rng), 0);
}

// CTRL penalty: a positive logit of a seen token is divided, a negative one multiplied.
TEST(repetition_penalty_changes_the_choice) {
  const float pos[3] = {2.0f, 1.9f, 0.5f};
  const int32_t ctx[2] = {0, 0};
  uint64_t rng = 1;
  CHECK_EQ(lcx::sample_token(pos, 3, sampling(0.0f), ctx, 2, &rng), 0);
  CHECK_EQ(lcx::sample_token(pos, 3, sampling(0.0f, 0, 1.0f, 1.2f), ctx, 2, &rng), 1);  // 2/1.2 < 1.9
  CHECK_EQ(lcx::sample_token(pos, 3, sampling(0.0f, 0, 1.0f, 1.02f), ctx, 2, &rng), 0); // 2/1.02 > 1.9
  const float neg[2] = {-1.0f, -1.1f};
  CHECK_EQ(lcx::sample_token(neg, 2, sampling(0.0f), ctx, 1, &rng), 0);
  CHECK_EQ(lcx::sample_token(neg, 2, sampling(0.0f, 0, 1.0f, 1.2f), ctx, 1, &rng), 1);  // -1.2 < -1.1
}

TEST(sampling_rejects_bad_settings) {
  const float z[2] = {0, 1};
  uint64_t rng = 0;
  CHECK_THROWS(LCX_ERR_ARG, "top_k", lcx::sample_token(z, 2, sampling(1.0f, -1), nullptr, 0, &rng));
  CHECK_THROWS(LCX_ERR_ARG, "top_p", lcx::sample_token(z, 2, sampling(1.0f, 0, -0.5f), nullptr, 0, &rng));
  CHECK_THROWS(LCX_ERR_ARG, "repetition_penalty", lcx::sample_token(z, 2, sampling(1.0f, 0, 1.0f, 0.0f), nullptr, 0, &rng));
  CHECK_THROWS(LCX_ERR_ARG, "temperature", lcx::sample_token(z, 2, sampling(NAN), nullptr, 0, &rng));
}

int main() { return testing::run_all(); }
