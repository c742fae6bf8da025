// CPU training throughput: tokens/s of one training step (forward + backward + AdamW) of the
// CPU reference backend, per attention pattern, on small GPT-2 shapes.
//
//   build/dev/cpu_train_bench [steps=5] [preset=all|tiny|small|gpt2]
//
// Prints the median step time over `steps` steps (after one warm-up step) and the achieved
// GFLOP/s counting 6 * parameters * tokens for the matmuls (the usual estimate; attention,
// LayerNorm and the optimizer are extra work not counted). The gpt2 preset (124M, T=256) is
// slow on 2 cores and only runs when asked for.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/backend.hpp"
#include "core/config.hpp"
#include "tiny_model.hpp"

namespace {

struct Preset {
  const char* name;
  int V, C, NH, L, B, T;
};

double step_ms(lcx::Backend& be, const lcx::Batch& batch) {
  const auto t0 = std::chrono::steady_clock::now();
  be.zero_grad();
  be.forward_backward(batch, 1.0f);
  be.optimizer_step(1e-4f);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::string want = argc > 2 ? argv[2] : "all";
  const Preset presets[] = {
      {"tiny", 1024, 64, 4, 2, 4, 128},
      {"small", 8192, 256, 4, 4, 2, 512},
      {"gpt2", 50257, 768, 12, 12, 1, 256},
  };
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::printf("CPU backend training step (forward + backward + AdamW), %d threads, median of %d\n",
              threads, steps);
  std::printf("%-6s %-8s %9s %8s %10s %10s %8s\n", "preset", "attn", "params", "tokens", "step ms",
              "tokens/s", "GFLOP/s");
  for (const Preset& p : presets) {
    if (want == "all" ? !std::strcmp(p.name, "gpt2") : want != p.name) continue;
    for (int kind : {LCX_ATTN_DENSE, LCX_ATTN_WINDOW, LCX_ATTN_SPARSE}) {
      lcx_config c = tiny::config(p.V, p.C, p.NH, p.L, 4 * p.C, p.T);
      tiny::set_all_layers(c, kind, p.T / 8);
      c.sparse = lcx_sparse_config{16, 4, 1, 0, 1, 1, 0};
      const auto params = tiny::random_params(c, 1, 0.02f);
      const auto tokens = tiny::random_tokens(p.B * p.T, p.V, 2);
      const auto targets = tiny::random_tokens(p.B * p.T, p.V, 3);
      const lcx::Batch batch{tokens.data(), targets.data(), nullptr, p.B, p.T};
      auto be = lcx::make_cpu_backend(c);
      be->set_params(params.data());
      be->train_init(lcx_train_config{0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0, 0, 0, 0});
      step_ms(*be, batch);  // warm-up: allocates activations
      std::vector<double> ms;
      for (int i = 0; i < steps; i++) ms.push_back(step_ms(*be, batch));
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      const double n_params = (double)lcx::param_layout(c).total;
      const double tokens_per_step = (double)p.B * p.T;
      const char* attn = kind == LCX_ATTN_DENSE ? "dense" : kind == LCX_ATTN_WINDOW ? "window" : "sparse";
      std::printf("%-6s %-8s %8.2fM %8.0f %10.1f %10.0f %8.2f\n", p.name, attn, n_params / 1e6,
                  tokens_per_step, med, tokens_per_step / med * 1e3,
                  6.0 * n_params * tokens_per_step / med / 1e6);
    }
  }
  return 0;
}
