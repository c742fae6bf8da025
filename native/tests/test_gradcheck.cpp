// Finite-difference gradient checks of the CPU backend's backward, for every parameter tensor
// and every attention pattern, on a tiny model with packed documents and unscored targets.
//
// For a parameter p the central difference (L(p + h) - L(p - h)) / 2h, with L the mean (in
// double) of the per-token NLLs the backend's forward returns (fp32), is compared with the
// analytic gradient from forward_backward. With h = 1e-2 the truncation error is O(h^2) ~ 1e-5
// and the float rounding of the NLLs adds ~1e-5, so the tolerance is
// |fd - grad| <= 5e-5 + 5e-3 |grad|. Every element
// of every tensor is checked (the model has ~2k parameters), zeros included: position rows
// past T must get exactly no gradient.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/backend.hpp"
#include "core/config.hpp"
#include "cpu/kernels.hpp"
#include "testing.hpp"
#include "tiny_model.hpp"

namespace {

constexpr int V = 11, C = 8, NH = 2, L = 2, F = 12, NPOS = 16, B = 2, T = 9;
const char* kTensorNames[LCX_NUM_PARAM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

void gradcheck(const char* name, const lcx_config& cfg, float grad_scale) {
  const auto lay = lcx::param_layout(cfg);
  auto params = tiny::random_params(cfg, 21);
  const auto tokens = tiny::random_tokens(B * T, V, 4);
  // Row 0: documents of 4 and 5 tokens; row 1: one document. The last token of each document
  // and one more are not scored.
  const std::vector<int32_t> segments = {0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2};
  std::vector<int32_t> targets(B * T);
  for (int n = 0; n < B * T; n++) targets[n] = (tokens[n] * 3 + 1) % V;
  targets[3] = targets[8] = targets[17] = targets[11] = -1;
  const lcx::Batch batch{tokens.data(), targets.data(), segments.data(), B, T};

  auto be = lcx::make_cpu_backend(cfg);
  be->set_params(params.data());
  be->train_init(lcx_train_config{0.9f, 0.95f, 1e-8f, 0.0f, 0.0f, 0, 0, 0, 0});
  be->zero_grad();
  const float loss = be->forward_backward(batch, grad_scale);
  std::vector<float> grads(lay.total);
  be->get_grads(grads.data());
  float fwd_loss = 0;
  be->forward(batch, nullptr, nullptr, &fwd_loss);
  CHECK_EQ(loss, fwd_loss);

  // The mean is taken in double over the per-token NLLs, so the loss is not rounded to float
  // once more at the end (that rounding alone would be ~1e-5 of noise in the difference).
  int scored = 0;
  for (int32_t y : targets) scored += y >= 0;
  std::vector<float> nll(B * T);
  auto loss_at = [&](size_t i, float value) {
    const float saved = params[i];
    params[i] = value;
    be->set_params(params.data());
    be->forward(batch, nll.data(), nullptr, nullptr);
    params[i] = saved;
    double sum = 0;
    for (float x : nll) sum += x;
    return sum / scored;
  };

  const float h = 1e-2f;  // smaller h: float noise grows; larger: truncation error grows
  double worst = 0;
  for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++) {
    double tensor_worst = 0, largest = 0;
    for (size_t i = lay.offset[t]; i < lay.offset[t] + lay.count[t]; i++) {
      const double fd = (loss_at(i, params[i] + h) - loss_at(i, params[i] - h)) / (2 * h);
      const double analytic = grads[i] / grad_scale;
      const double err = std::fabs(fd - analytic);
      tensor_worst = std::max(tensor_worst, err / (5e-5 + 5e-3 * std::fabs(analytic)));
      if (!(err <= 5e-5 + 5e-3 * std::fabs(analytic)))
        testing::fail_check(__FILE__, __LINE__,
                            std::string(name) + " " + kTensorNames[t] + "[" +
                                std::to_string(i - lay.offset[t]) + "]: finite difference " +
                                std::to_string(fd) + " vs gradient " + std::to_string(analytic));
      largest = std::max(largest, std::fabs(analytic));
    }
    // A gradient that is zero everywhere would pass trivially: each tensor must have some.
    CHECK(largest > 1e-3);
    worst = std::max(worst, tensor_worst);
  }
  testing::note("%-8s loss %.4f, worst error / tolerance = %.3f", name, loss, worst);
  be->set_params(params.data());
}

lcx_config make(int kind, int window) {
  lcx_config c = tiny::config(V, C, NH, L, F, NPOS);
  tiny::set_all_layers(c, kind, window);
  return c;
}

}  // namespace

TEST(gradcheck_dense) { gradcheck("dense", make(LCX_ATTN_DENSE, 0), 1.0f); }
TEST(gradcheck_window) { gradcheck("window3", make(LCX_ATTN_WINDOW, 3), 1.0f); }
TEST(gradcheck_sparse) { gradcheck("sparse", make(LCX_ATTN_SPARSE, 0), 1.0f); }
TEST(gradcheck_sparse_dense_mix) {
  lcx_config c = make(LCX_ATTN_SPARSE, 0);
  c.attn_kind[1] = LCX_ATTN_DENSE;
  c.sparse = lcx_sparse_config{2, 2, 1, 0, 1, 0, 1};  // bidirectional + horizontal layout
  gradcheck("mix", c, 1.0f);
}
// grad_scale multiplies what is added (micro-batch accumulation uses 1/num_micro_batches).
TEST(gradcheck_with_grad_scale) { gradcheck("scaled", make(LCX_ATTN_WINDOW, 2), 0.25f); }

// Gradients accumulate across forward_backward calls until zero_grad.
TEST(gradients_accumulate) {
  const lcx_config c = make(LCX_ATTN_DENSE, 0);
  const auto lay = lcx::param_layout(c);
  const auto params = tiny::random_params(c, 3);
  const auto tok = tiny::random_tokens(B * T, V, 8), tgt = tiny::random_tokens(B * T, V, 9);
  auto be = lcx::make_cpu_backend(c);
  be->set_params(params.data());
  be->train_init(lcx_train_config{0.9f, 0.95f, 1e-8f, 0.0f, 0.0f, 0, 0, 0, 0});
  be->zero_grad();
  be->forward_backward({tok.data(), tgt.data(), nullptr, B, T}, 1.0f);
  std::vector<float> once(lay.total), twice(lay.total);
  be->get_grads(once.data());
  be->forward_backward({tok.data(), tgt.data(), nullptr, B, T}, 0.5f);
  be->get_grads(twice.data());
  double err = 0;
  for (size_t i = 0; i < lay.total; i++) err = std::max(err, (double)std::fabs(twice[i] - 1.5f * once[i]));
  CHECK(err < 1e-6);
  be->zero_grad();
  be->get_grads(twice.data());
  CHECK(std::all_of(twice.begin(), twice.end(), [](float g) { return g == 0.0f; }));
  CHECK_THROWS(LCX_ERR_ARG, "targets", be->forward_backward({tok.data(), nullptr, nullptr, B, T}, 1.0f));
}

// The linear layers against a plain double-precision product, on shapes that hit every edge of
// the register tiles and cache blocks (rows not a multiple of 8 or 4, columns not a multiple
// of 8 or 4, reductions longer than a cache block), forward and both backward products.
TEST(matmul_matches_naive_on_tile_edges) {
  const int shapes[][3] = {{1, 5, 3}, {9, 8, 12}, {37, 29, 45}, {70, 300, 67}, {300, 19, 270}};
  for (const auto& sh : shapes) {
    const int N = sh[0], IC = sh[1], OC = sh[2];
    tiny::Rng rng(N * 1000 + IC);
    std::vector<float> x((size_t)N * IC), w((size_t)OC * IC), b(OC), dout((size_t)N * OC);
    for (auto* v : {&x, &w, &b, &dout})
      for (auto& e : *v) e = rng.normal();
    std::vector<float> out((size_t)N * OC), dx((size_t)N * IC), dw((size_t)OC * IC, 0.5f),
        db(OC, 0.25f);  // dweight and dbias accumulate onto what is there
    lcx::cpu::matmul_forward(out.data(), x.data(), w.data(), b.data(), N, IC, OC);
    lcx::cpu::matmul_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(),
                              N, IC, OC);
    double err = 0;
    for (int n = 0; n < N; n++)
      for (int o = 0; o < OC; o++) {
        double s = b[o];
        for (int i = 0; i < IC; i++) s += (double)x[(size_t)n * IC + i] * w[(size_t)o * IC + i];
        err = std::max(err, std::fabs(s - out[(size_t)n * OC + o]));
      }
    for (int n = 0; n < N; n++)
      for (int i = 0; i < IC; i++) {
        double s = 0;
        for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)o * IC + i];
        err = std::max(err, std::fabs(s - dx[(size_t)n * IC + i]));
      }
    for (int o = 0; o < OC; o++) {
      double sb = 0.25;
      for (int n = 0; n < N; n++) sb += dout[(size_t)n * OC + o];
      err = std::max(err, std::fabs(sb - db[o]));
      for (int i = 0; i < IC; i++) {
        double s = 0.5;
        for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * x[(size_t)n * IC + i];
        err = std::max(err, std::fabs(s - dw[(size_t)o * IC + i]));
      }
    }
    // Sums of up to 300 products of unit normals: float rounding stays below ~1e-4.
    testing::note("N=%d IC=%d OC=%d: max error %.2e", N, IC, OC, err);
    CHECK(err < 2e-4);
  }
}

// The gradient checks above run on models small enough that every layer stays on one thread.
// Here a model big enough for every kernel to split its work (matmuls, attention forward and
// backward, LayerNorm, classifier, AdamW) must give bit-identical logits, loss, gradients and
// updated parameters with 1, 2 and 3 threads: each output is owned by one task and reduced
// in a fixed order, so the partition cannot change a bit, and a race would.
TEST(threads_do_not_change_results) {
#ifndef _OPENMP
  testing::note("built without OpenMP: nothing to compare");
#else
  const int Vb = 301, Cb = 64, NHb = 4, Lb = 2, Fb = 256, Tb = 256, Bb = 4;  // N*C = 65536
  const int saved_threads = omp_get_max_threads();
  for (int kind : {LCX_ATTN_DENSE, LCX_ATTN_WINDOW, LCX_ATTN_SPARSE}) {
    lcx_config c = tiny::config(Vb, Cb, NHb, Lb, Fb, 256);
    tiny::set_all_layers(c, kind, 17);
    c.sparse = lcx_sparse_config{8, 4, 1, 1, 4, 1, 0};
    const auto lay = lcx::param_layout(c);
    const auto params = tiny::random_params(c, 5, 0.1f);
    const auto tok = tiny::random_tokens(Bb * Tb, Vb, 6);
    auto tgt = tiny::random_tokens(Bb * Tb, Vb, 7);
    std::vector<int32_t> seg(Bb * Tb);
    for (int n = 0; n < Bb * Tb; n++) seg[n] = n / 100;
    for (int n = 0; n < Bb * Tb; n += 13) tgt[n] = -1;
    const lcx::Batch batch{tok.data(), tgt.data(), seg.data(), Bb, Tb};

    std::vector<float> logits[3], grads[3], after[3];
    float loss[3];
    for (int threads = 1; threads <= 3; threads++) {
      omp_set_num_threads(threads);
      auto be = lcx::make_cpu_backend(c);
      be->set_params(params.data());
      be->train_init(lcx_train_config{0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0, 0, 0, 0});
      be->zero_grad();
      loss[threads - 1] = be->forward_backward(batch, 1.0f);
      grads[threads - 1].resize(lay.total);
      be->get_grads(grads[threads - 1].data());
      be->optimizer_step(1e-3f);
      after[threads - 1].resize(lay.total);
      be->get_params(after[threads - 1].data());
      logits[threads - 1].resize((size_t)Bb * Tb * Vb);
      be->forward(batch, nullptr, logits[threads - 1].data(), nullptr);
    }
    for (int k = 1; k < 3; k++) {
      CHECK(logits[k] == logits[0]);
      CHECK_EQ(loss[k], loss[0]);
      CHECK(grads[k] == grads[0]);
      CHECK(after[k] == after[0]);
    }
  }
  omp_set_num_threads(saved_threads);
#endif
}

int main() { return testing::run_all(); }
