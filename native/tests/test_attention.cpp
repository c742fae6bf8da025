// Each attention pattern (dense, sliding window, DeepSpeed block-sparse, and a ruGPT3XL-style
// mix) with documents packed into rows, B = 2: the CPU backend's full forward against the naive
// double-precision reference model (reference_model.hpp), which applies attends() to every
// (query, key) pair. Plus: the key enumeration the kernels use lists exactly the keys attends()
// allows, and documents / rows do not leak into each other.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/config.hpp"
#include "cpu/kernels.hpp"
#include "reference_model.hpp"
#include "testing.hpp"
#include "tiny_model.hpp"

namespace {

constexpr int V = 37, C = 12, NH = 3, L = 2, F = 20, NPOS = 24, B = 2, T = 19;

// Row 0: three documents; row 1: an id that comes back after another document (attends() lets
// the later run see the earlier one; positions restart at every change of id).
const std::vector<int32_t> kSegments = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2,
                                        4, 4, 4, 4, 9, 9, 9, 9, 9, 9, 4, 4, 4, 4, 4, 4, 4, 4, 4};

struct Case {
  const char* name;
  lcx_config cfg;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  lcx_config c = tiny::config(V, C, NH, L, F, NPOS);
  tiny::set_all_layers(c, LCX_ATTN_DENSE);
  out.push_back({"dense", c});
  tiny::set_all_layers(c, LCX_ATTN_WINDOW, 3);
  out.push_back({"window3", c});
  c.attn_window[1] = 6;
  out.push_back({"window3+6", c});
  // block 2, windows of 2 blocks, 2 global patterns over 3 heads, causal
  tiny::set_all_layers(c, LCX_ATTN_SPARSE);
  out.push_back({"sparse_unidirectional", c});
  // bidirectional layout with horizontal global rows, cut by the causal mask; block 3 so that
  // T = 19 ends inside a block and n_positions = 24 leaves unused layout rows.
  c.sparse = lcx_sparse_config{3, 3, 1, 1, 3, 0, 1};
  out.push_back({"sparse_bidirectional_horizontal", c});
  // ruGPT3XL: even layers sparse, odd layers dense, one layout for all heads
  c.sparse = lcx_sparse_config{2, 4, 1, 0, 1, 1, 0};
  c.attn_kind[0] = LCX_ATTN_SPARSE;
  c.attn_kind[1] = LCX_ATTN_DENSE;
  out.push_back({"rugpt3xl_mix", c});
  return out;
}

double max_abs(const std::vector<double>& x) {
  double m = 0;
  for (double v : x) m = std::max(m, std::fabs(v));
  return m;
}

}  // namespace

// The kernels never test a key against the mask: they enumerate. The enumeration must list
// exactly {k : attends(q, k)}, in order, for every pattern, head and query.
TEST(allowed_keys_equal_attends) {
  int lists = 0;
  for (const Case& cs : cases()) {
    const lcx_config& c = cs.cfg;
    lcx::cpu::BlockLayout layout;
    const int nb = (NPOS + c.sparse.block - 1) / c.sparse.block;
    layout.build(lcx::fixed_sparse_layout(c.sparse, NH, NPOS), NH, nb, c.sparse.block);
    for (int l = 0; l < L; l++) {
      const lcx::cpu::AttnPattern p{c.attn_kind[l], c.attn_window[l], &layout};
      for (int row = 0; row < B; row++) {
        for (int with_segments = 0; with_segments < 2; with_segments++) {
          const int32_t* seg = with_segments ? kSegments.data() + row * T : nullptr;
          std::vector<int32_t> first(T, 0), keys(T);
          if (seg) lcx::cpu::document_starts(seg, T, first.data());
          for (int h = 0; h < NH; h++) {
            for (int q = 0; q < T; q++) {
              std::vector<int32_t> want;
              for (int k = 0; k < T; k++)
                if (lcx::attends(p.kind, p.window, layout.dense.data(), nb, c.sparse.block, h, q,
                                 k, seg))
                  want.push_back(k);
              const int n = lcx::cpu::allowed_keys(p, h, q, first[q], seg, keys.data());
              const std::vector<int32_t> got(keys.begin(), keys.begin() + n);
              if (got != want)
                testing::fail_check(__FILE__, __LINE__,
                                    std::string(cs.name) + ": key list differs at h=" +
                                        std::to_string(h) + " q=" + std::to_string(q));
              lists++;
            }
          }
        }
      }
    }
  }
  testing::note("%d key lists compared", lists);
}

// Full model forward on the CPU backend vs the reference, for every pattern, with and without
// packed documents. Logits, per-token NLL and the mean loss.
TEST(forward_matches_masked_softmax_reference) {
  const auto tokens = tiny::random_tokens(B * T, V, 7);
  std::vector<int32_t> targets(B * T);
  for (int n = 0; n < B * T; n++) targets[n] = (n % 5 == 4) ? -1 : (tokens[n] * 7 + 3) % V;
  for (const Case& cs : cases()) {
    const auto params = tiny::random_params(cs.cfg, 11);
    auto be = lcx::make_cpu_backend(cs.cfg);
    be->set_params(params.data());
    for (int with_segments = 0; with_segments < 2; with_segments++) {
      const int32_t* seg = with_segments ? kSegments.data() : nullptr;
      const lcx::Batch batch{tokens.data(), targets.data(), seg, B, T};
      std::vector<float> logits((size_t)B * T * V), nll(B * T);
      float loss = 0;
      be->forward(batch, nll.data(), logits.data(), &loss);
      const auto ref = reference::logits(cs.cfg, params, tokens.data(), seg, B, T);
      const auto ref_nll = reference::nll(ref, targets.data(), B * T, V);

      double err = 0, nll_err = 0, ref_loss = 0;
      int scored = 0;
      for (size_t i = 0; i < ref.size(); i++) err = std::max(err, std::fabs(ref[i] - logits[i]));
      for (int n = 0; n < B * T; n++) {
        nll_err = std::max(nll_err, std::fabs(ref_nll[n] - nll[n]));
        if (targets[n] >= 0) ref_loss += ref_nll[n], scored++;
      }
      ref_loss /= scored;
      const double scale = std::max(1.0, max_abs(ref));
      testing::note("%-32s segments=%d  max|dlogit| %.2e (logits up to %.1f)  max|dnll| %.2e",
                    cs.name, with_segments, err, scale, nll_err);
      CHECK(err <= 2e-5 * scale);
      CHECK(nll_err <= 2e-5 * scale);
      CHECK_NEAR(loss, ref_loss, 2e-5 * scale);

      // Asking for NLL without logits goes through the chunked classifier: same numbers.
      std::vector<float> nll2(B * T);
      float loss2 = 0;
      be->forward(batch, nll2.data(), nullptr, &loss2);
      CHECK(nll2 == nll);
      CHECK_EQ(loss2, loss);
    }
  }
}

// Guards against a vacuous pass: each pattern's reference really differs from dense (the mask
// is doing something), and documents really differ from no documents.
TEST(patterns_change_the_output) {
  const auto tokens = tiny::random_tokens(B * T, V, 7);
  const auto all = cases();
  const auto params = tiny::random_params(all[0].cfg, 11);
  const auto dense = reference::logits(all[0].cfg, params, tokens.data(), kSegments.data(), B, T);
  const auto dense_noseg = reference::logits(all[0].cfg, params, tokens.data(), nullptr, B, T);
  double d = 0;
  for (size_t i = 0; i < dense.size(); i++) d = std::max(d, std::fabs(dense[i] - dense_noseg[i]));
  CHECK(d > 1e-2);
  for (size_t k = 1; k < all.size(); k++) {
    const auto other = reference::logits(all[k].cfg, params, tokens.data(), kSegments.data(), B, T);
    double diff = 0;
    for (size_t i = 0; i < dense.size(); i++) diff = std::max(diff, std::fabs(dense[i] - other[i]));
    testing::note("%-32s differs from dense by up to %.3f", all[k].name, diff);
    CHECK(diff > 1e-2);
  }
}

// Changing the tokens of one document changes nothing outside it: not the other documents of
// the row, not the other row. Checked on the backend directly, for every pattern.
TEST(documents_and_rows_are_isolated) {
  auto tokens = tiny::random_tokens(B * T, V, 3);
  for (const Case& cs : cases()) {
    const auto params = tiny::random_params(cs.cfg, 5);
    auto be = lcx::make_cpu_backend(cs.cfg);
    be->set_params(params.data());
    std::vector<float> before((size_t)B * T * V), after((size_t)B * T * V);
    be->forward({tokens.data(), nullptr, kSegments.data(), B, T}, nullptr, before.data(), nullptr);
    auto changed = tokens;
    for (int t = 7; t < 12; t++) changed[t] = (changed[t] + 1) % V;  // document 1 of row 0
    be->forward({changed.data(), nullptr, kSegments.data(), B, T}, nullptr, after.data(), nullptr);
    for (int n = 0; n < B * T; n++) {
      const bool inside = n >= 7 && n < 12;
      const bool same = std::equal(before.begin() + (size_t)n * V, before.begin() + (size_t)(n + 1) * V,
                                   after.begin() + (size_t)n * V);
      if (inside ? same : !same)
        testing::fail_check(__FILE__, __LINE__,
                            std::string(cs.name) + ": token " + std::to_string(n) +
                                (inside ? " did not change" : " changed"));
    }
  }
}

TEST(batch_validation) {
  lcx_config c = tiny::config(V, C, NH, L, F, NPOS);
  tiny::set_all_layers(c, LCX_ATTN_DENSE);
  auto be = lcx::make_cpu_backend(c);
  const auto params = tiny::random_params(c, 1);
  be->set_params(params.data());
  std::vector<int32_t> tok(NPOS + 1, 1), tgt(NPOS + 1, 1);
  float loss;
  CHECK_THROWS(LCX_ERR_ARG, "positions", be->forward({tok.data(), nullptr, nullptr, 1, NPOS + 1}, nullptr, nullptr, &loss));
  tok[3] = V;
  CHECK_THROWS(LCX_ERR_ARG, "tokens[3]", be->forward({tok.data(), nullptr, nullptr, 1, 5}, nullptr, nullptr, &loss));
  tok[3] = 0;
  tgt[2] = -2;
  CHECK_THROWS(LCX_ERR_ARG, "targets[2]", be->forward({tok.data(), tgt.data(), nullptr, 1, 5}, nullptr, nullptr, &loss));
  // Without targets nothing is scored.
  std::vector<float> nll(5, 1.0f);
  be->forward({tok.data(), nullptr, nullptr, 1, 5}, nll.data(), nullptr, &loss);
  CHECK_EQ(loss, 0.0f);
  CHECK(std::all_of(nll.begin(), nll.end(), [](float x) { return x == 0.0f; }));
}

int main() { return testing::run_all(); }
