// AdamW, clipping and the numeric guard of the CPU backend, plus optimizer-state exchange and
// memory accounting.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/config.hpp"
#include "testing.hpp"
#include "tiny_model.hpp"

namespace {

constexpr int V = 23, C = 16, NH = 2, L = 2, F = 32, NPOS = 32, B = 2, T = 12;

struct Setup {
  lcx_config cfg;
  lcx_param_layout lay;
  std::vector<float> params;
  std::vector<int32_t> tokens, targets, segments;
  std::unique_ptr<lcx::Backend> be;
  lcx::Batch batch() const { return {tokens.data(), targets.data(), segments.data(), B, T}; }
};

Setup setup(lcx_train_config tc, int kind = LCX_ATTN_DENSE) {
  Setup s;
  s.cfg = tiny::config(V, C, NH, L, F, NPOS);
  tiny::set_all_layers(s.cfg, kind, 4);
  s.lay = lcx::param_layout(s.cfg);
  s.params = tiny::random_params(s.cfg, 31, 0.1f);
  s.tokens = tiny::random_tokens(B * T, V, 32);
  s.targets.resize(B * T);
  for (int n = 0; n < B * T; n++) s.targets[n] = n + 1 < B * T ? s.tokens[n + 1] : -1;
  s.targets[T - 1] = -1;
  s.segments.assign(B * T, 0);
  for (int t = 6; t < T; t++) s.segments[t] = 1;
  s.be = lcx::make_cpu_backend(s.cfg);
  s.be->set_params(s.params.data());
  s.be->train_init(tc);
  return s;
}

float eval_loss(Setup& s) {
  float loss = 0;
  s.be->forward(s.batch(), nullptr, nullptr, &loss);
  return loss;
}

}  // namespace

TEST(adamw_steps_lower_the_loss) {
  for (int kind : {LCX_ATTN_DENSE, LCX_ATTN_SPARSE}) {
    Setup s = setup({0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0, 0, 0}, kind);
    const float before = eval_loss(s);
    float last = before;
    for (int step = 0; step < 20; step++) {
      s.be->zero_grad();
      const float l = s.be->forward_backward(s.batch(), 1.0f);
      s.be->optimizer_step(3e-3f);
      last = l;
    }
    const float after = eval_loss(s);
    testing::note("kind %d: loss %.4f -> %.4f after 20 steps (last training loss %.4f)", kind,
                  before, after, last);
    CHECK(after < 0.8f * before);
    CHECK_EQ(s.be->steps(), (int64_t)20);
  }
}

// With all gradients zero (grad_scale 0), Adam's update is exactly 0, so what is left is the
// decoupled decay: p <- p - lr * wd * p on wte, wpe and the matrices, nothing on biases and
// LayerNorm parameters.
TEST(weight_decay_only_on_matrices) {
  const float lr = 0.1f, wd = 0.5f;
  Setup s = setup({0.9f, 0.95f, 1e-8f, wd, 0.0f, 0, 0, 0});
  s.be->zero_grad();
  s.be->forward_backward(s.batch(), 0.0f);
  s.be->optimizer_step(lr);
  std::vector<float> after(s.lay.total);
  s.be->get_params(after.data());
  for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++) {
    const bool decays = lcx::param_decays(t);
    double worst = 0;
    for (size_t i = s.lay.offset[t]; i < s.lay.offset[t] + s.lay.count[t]; i++) {
      const double want = decays ? s.params[i] - lr * wd * s.params[i] : s.params[i];
      worst = std::max(worst, std::fabs(after[i] - want));
    }
    if (!(worst <= 1e-7))
      testing::fail_check(__FILE__, __LINE__,
                          "tensor " + std::to_string(t) + (decays ? " (decays)" : " (exempt)") +
                              " off by " + std::to_string(worst));
  }
  // The exempt set is exactly biases and LayerNorm: 2-D tensors decay, the rest do not.
  const bool want[LCX_NUM_PARAM_TENSORS] = {1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0};
  for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++) CHECK_EQ(lcx::param_decays(t), want[t]);
}

// With beta1 = beta2 = 0 the AdamW step is p -= lr * g / (|g| + eps); with eps much larger than
// |g| it is nearly linear in g, so it reveals the gradient the optimizer used: g * coef with
// coef = clip / (norm + 1e-6) when the norm exceeds clip, else g. Checked against get_grads.
TEST(clipping_scales_by_global_norm) {
  for (const float clip_factor : {0.25f, 4.0f}) {
    const float lr = 1.0f, eps = 10.0f;  // updates ~1e-2, far above float rounding of p
    Setup probe = setup({0.0f, 0.0f, eps, 0.0f, 0.0f, 0, 0, 0});
    probe.be->zero_grad();
    probe.be->forward_backward(probe.batch(), 1.0f);
    std::vector<float> g(probe.lay.total);
    probe.be->get_grads(g.data());
    double ss = 0;
    for (float x : g) ss += (double)x * x;
    const float norm = (float)std::sqrt(ss);
    const float clip = clip_factor * norm;

    Setup s = setup({0.0f, 0.0f, eps, 0.0f, clip, 0, 0, 0});
    s.be->zero_grad();
    s.be->forward_backward(s.batch(), 1.0f);
    const float reported = s.be->optimizer_step(lr);
    CHECK_NEAR(reported, norm, 1e-6 * norm);
    std::vector<float> after(s.lay.total);
    s.be->get_params(after.data());
    const double coef = clip_factor < 1 ? clip / (norm + 1e-6) : 1.0;
    double worst = 0, biggest = 0;
    for (size_t i = 0; i < s.lay.total; i++) {
      const double gc = g[i] * coef;
      const double want = s.params[i] - lr * gc / (std::fabs(gc) + eps);
      worst = std::max(worst, std::fabs(after[i] - want));
      biggest = std::max(biggest, std::fabs((double)after[i] - s.params[i]));
    }
    testing::note("clip = %.2f x norm (%.4f): largest update %.3e, worst error %.3e", clip_factor,
                  norm, biggest, worst);
    // Using the unclipped gradient would be off by (1 - coef) = 75% of the update.
    CHECK(worst <= 1e-4 * biggest);
    CHECK(biggest > 1e-3);
  }
}

// NaN or Inf in the gradients: LCX_ERR_NUMERIC, and nothing moves (params, moments, step).
TEST(nan_gradients_leave_params_untouched) {
  for (const float bad : {NAN, INFINITY}) {
    Setup s = setup({0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0, 0, 0});
    s.be->zero_grad();
    s.be->forward_backward(s.batch(), 1.0f);
    s.be->optimizer_step(1e-3f);  // some optimizer state first
    std::vector<float> p0(s.lay.total), m0(s.lay.total), v0(s.lay.total);
    s.be->get_params(p0.data());
    s.be->get_optimizer_state(m0.data(), v0.data());

    s.be->zero_grad();
    s.be->forward_backward(s.batch(), bad);  // every gradient becomes NaN or +-Inf
    CHECK_THROWS(LCX_ERR_NUMERIC, "NaN or Inf", s.be->optimizer_step(1e-3f));
    std::vector<float> p1(s.lay.total), m1(s.lay.total), v1(s.lay.total);
    s.be->get_params(p1.data());
    s.be->get_optimizer_state(m1.data(), v1.data());
    CHECK(std::memcmp(p0.data(), p1.data(), p0.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(m0.data(), m1.data(), m0.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(v0.data(), v1.data(), v0.size() * sizeof(float)) == 0);
    CHECK_EQ(s.be->steps(), (int64_t)1);
  }
}

// Params + moments + step copied into a fresh backend continue bit-identically (what a
// checkpoint resume relies on).
TEST(optimizer_state_round_trip_resumes_exactly) {
  const lcx_train_config tc{0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0, 0, 0, 0};
  Setup a = setup(tc);
  for (int i = 0; i < 3; i++) {
    a.be->zero_grad();
    a.be->forward_backward(a.batch(), 1.0f);
    a.be->optimizer_step(1e-3f);
  }
  std::vector<float> p(a.lay.total), m(a.lay.total), v(a.lay.total);
  a.be->get_params(p.data());
  a.be->get_optimizer_state(m.data(), v.data());
  Setup b = setup(tc);
  b.be->set_params(p.data());
  b.be->set_optimizer_state(m.data(), v.data(), a.be->steps());
  CHECK_EQ(b.be->steps(), (int64_t)3);
  for (Setup* s : {&a, &b}) {
    s->be->zero_grad();
    s->be->forward_backward(s->batch(), 1.0f);
    s->be->optimizer_step(1e-3f);
  }
  std::vector<float> pa(a.lay.total), pb(a.lay.total);
  a.be->get_params(pa.data());
  b.be->get_params(pb.data());
  CHECK(pa == pb);
  CHECK(pa != p);
}

TEST(train_config_validation) {
  lcx_config c = tiny::config(V, C, NH, L, F, NPOS);
  tiny::set_all_layers(c, LCX_ATTN_DENSE);
  auto be = lcx::make_cpu_backend(c);
  CHECK_THROWS(LCX_ERR_ARG, "train_init", be->optimizer_step(1e-3f));
  CHECK_THROWS(LCX_ERR_ARG, "betas", be->train_init({1.0f, 0.95f, 1e-8f, 0, 0, 0, 0, 0}));
  CHECK_THROWS(LCX_ERR_ARG, "weight_decay", be->train_init({0.9f, 0.95f, 1e-8f, -1, 0, 0, 0, 0}));
  CHECK(!be->has_optimizer_state());
  be->train_init({0.9f, 0.95f, 1e-8f, 0, 0, 0, 0, 0});
  CHECK(be->has_optimizer_state());

  // train_init again starts over: step 0, zero moments, zero gradients.
  const auto params = tiny::random_params(c, 1);
  be->set_params(params.data());
  const auto tok = tiny::random_tokens(B * T, V, 2);
  be->forward_backward({tok.data(), tok.data(), nullptr, B, T}, 1.0f);
  be->optimizer_step(1e-3f);
  be->forward_backward({tok.data(), tok.data(), nullptr, B, T}, 1.0f);
  CHECK_EQ(be->steps(), (int64_t)1);
  be->train_init({0.9f, 0.95f, 1e-8f, 0, 0, 0, 0, 0});
  CHECK_EQ(be->steps(), (int64_t)0);
  const size_t total = lcx::param_layout(c).total;
  std::vector<float> m(total), v(total), g(total);
  be->get_optimizer_state(m.data(), v.data());
  be->get_grads(g.data());
  auto zero = [](const std::vector<float>& x) {
    return std::all_of(x.begin(), x.end(), [](float e) { return e == 0.0f; });
  };
  CHECK(zero(m) && zero(v) && zero(g));
}

// memory_stats counts what the backend holds: parameters, gradients and moments, activations
// once a batch ran, and KV caches it handed out (released with them).
TEST(memory_stats_track_allocations) {
  lcx_config c = tiny::config(V, C, NH, L, F, NPOS);
  tiny::set_all_layers(c, LCX_ATTN_DENSE);
  auto be = lcx::make_cpu_backend(c);
  const int64_t param_bytes = (int64_t)lcx::param_layout(c).total * 4;
  const auto s0 = be->memory_stats();
  CHECK_EQ(s0.allocated_bytes, param_bytes);
  CHECK_EQ(s0.mapped_bytes, s0.allocated_bytes);
  be->train_init({0.9f, 0.95f, 1e-8f, 0, 0, 0, 0, 0});
  CHECK_EQ(be->memory_stats().allocated_bytes, 4 * param_bytes);
  const auto params = tiny::random_params(c, 1);
  be->set_params(params.data());
  const auto tok = tiny::random_tokens(B * T, V, 2);
  be->forward_backward({tok.data(), tok.data(), nullptr, B, T}, 1.0f);
  const auto s1 = be->memory_stats();
  CHECK(s1.allocated_bytes > 4 * param_bytes);
  CHECK(s1.peak_allocated_bytes >= s1.allocated_bytes);
  {
    auto gen = be->gen_create(NPOS);
    const int64_t kv_bytes = (int64_t)2 * L * NPOS * C * 4;
    CHECK(be->memory_stats().allocated_bytes >= s1.allocated_bytes + kv_bytes);
  }
  CHECK_EQ(be->memory_stats().allocated_bytes, s1.allocated_bytes);
  be->reset_peak();
  CHECK_EQ(be->memory_stats().peak_allocated_bytes, s1.allocated_bytes);
}

// A model too big for memory is an error with the size asked, not a crash. 2^51 floats of
// position embeddings exceed any 47-bit address space, so this fails the same way whatever the
// machine's overcommit policy.
TEST(out_of_memory_is_an_error) {
  lcx_config c = tiny::config(16, 1 << 20, 1, 1, 1, (1 << 30) + ((1 << 30) - 1));
  tiny::set_all_layers(c, LCX_ATTN_DENSE);
  CHECK_THROWS(LCX_ERR_OOM, "bytes for parameters", lcx::make_cpu_backend(c));
}

int main() { return testing::run_all(); }
