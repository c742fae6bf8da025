// GPU training benchmark (not a test): the ruGPT3XL-sized model (24 x 2048, 16 heads, head size
// 128, vocab 50264, ~1.33B parameters), full fine-tuning, batch 1, through the C API exactly as
// the app drives it: create at 2048 positions, train, extend positions to 4096 (tile), train,
// extend to 8192, train. Prints tokens/s, step time, MFU and peak memory per stage, then the
// allocator's peak mapped vs allocated bytes over the 2k -> 4k -> 8k sequence with a 60/40 mix
// of long/short examples, in both allocator modes, and the lean (bf16 master) mode at the end.
//
// Usage: gpu_train_bench [--quick] [--json out.json]
//   --quick: smaller model (4 layers) for a smoke run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "longctx.h"

namespace {

double gib(int64_t b) { return b / 1073741824.0; }

#define OK(call)                                                                     \
  do {                                                                               \
    lcx_status s_ = (call);                                                          \
    if (s_ != LCX_OK) {                                                              \
      std::printf("ERROR %s: %s\n", #call, lcx_last_error());                        \
      return false;                                                                  \
    }                                                                                \
  } while (0)

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int below(int n) { return (int)(next() % (uint64_t)n); }
};

lcx_config xl_config(int layers, int n_positions) {
  lcx_config c;
  std::memset(&c, 0, sizeof c);
  c.arch = LCX_ARCH_GPT2;
  c.vocab_size = 50264;
  c.n_positions = n_positions;
  c.n_embd = 2048;
  c.n_layer = layers;
  c.n_head = 16;
  c.n_inner = 8192;
  c.layer_norm_eps = 1e-5f;
  for (int l = 0; l < layers; l++) c.attn_kind[l] = LCX_ATTN_DENSE;
  c.sparse.block = 16;
  c.sparse.num_local_blocks = 8;
  c.sparse.num_global_blocks = 1;
  c.sparse.different_layout_per_head = 1;
  c.sparse.num_different_global_patterns = 8;
  c.sparse.unidirectional = 1;
  return c;
}

lcx_train_config train_cfg(int master) {
  lcx_train_config t{};
  t.beta1 = 0.9f;
  t.beta2 = 0.999f;  // torch AdamW defaults, as the anchor
  t.eps = 1e-8f;
  t.weight_decay = 0.01f;
  t.grad_clip = 1.0f;
  t.recompute = 1;
  t.master_dtype = master;
  t.seed = 1;
  return t;
}

// One optimizer step on one sequence of T tokens (targets = next token, last unscored).
bool step(lcx_model* m, int T, Rng& rng, int V, float* loss, double* ms) {
  std::vector<int32_t> tok(T), tgt(T);
  for (int i = 0; i < T; i++) tok[i] = rng.below(V);
  for (int i = 0; i < T; i++) tgt[i] = i + 1 < T ? tok[i + 1] : -1;
  lcx_batch b{tok.data(), tgt.data(), nullptr, 1, T};
  const auto t0 = std::chrono::steady_clock::now();
  OK(lcx_zero_grad(m));
  OK(lcx_forward_backward(m, &b, 1.0f, loss));
  float norm = 0;
  OK(lcx_optimizer_step(m, 1e-5f, &norm));  // synchronises (the norm comes back to the host)
  *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

double flops_per_token(const lcx_config& c, int T) {
  // 6 N for the matmuls (N without position embeddings), plus causal attention fwd+bwd:
  // 3 passes x 2 products x 2 flops x T*C/2 per layer.
  const double C = c.n_embd, L = c.n_layer, F = c.n_inner, V = c.vocab_size;
  const double n_mat = L * (3 * C * C + C * C + 2 * C * F) + V * C;
  return 6 * n_mat + 6.0 * L * T * C;
}

struct Row {
  int T;
  double tok_s, step_ms, mfu;
  double peak_mapped, peak_alloc;
};

bool throughput_and_mix(bool expandable, int layers, bool timed, std::vector<Row>* rows,
                        double* mix_mapped, double* mix_alloc, double* lean_peak, double* lean_tok_s) {
  OK(lcx_cuda_set_allocator(expandable ? 1 : 0));
  lcx_config cfg = xl_config(layers, 2048);
  lcx_model* m = nullptr;
  OK(lcx_model_create(&cfg, 1, LCX_BACKEND_CUDA, &m));
  lcx_train_config tc = train_cfg(0);
  OK(lcx_train_init(m, &tc));
  OK(lcx_memory_reset_peak(m));
  Rng rng{42};
  const int V = cfg.vocab_size;
  int64_t mix_peak_mapped = 0, mix_peak_alloc = 0;
  for (int T : {2048, 4096, 8192}) {
    if (T > cfg.n_positions) {
      OK(lcx_extend_positions(m, T, LCX_EXTEND_TILE, 0));
      cfg.n_positions = T;
    }
    float loss = 0;
    double ms = 0;
    if (timed) {
      lcx_memory_stats s0{};
      OK(lcx_memory_stats_get(m, &s0));
      std::vector<double> times;
      for (int i = 0; i < 8; i++) {
        if (!step(m, T, rng, V, &loss, &ms)) return false;
        if (i >= 2) times.push_back(ms);
      }
      std::sort(times.begin(), times.end());
      const double med = times[times.size() / 2];
      lcx_memory_stats s{};
      OK(lcx_memory_stats_get(m, &s));
      Row r;
      r.T = T;
      r.step_ms = med;
      r.tok_s = T / (med / 1000.0);
      r.mfu = r.tok_s * flops_per_token(cfg, T) / 989e12;
      r.peak_mapped = gib(s.peak_mapped_bytes);
      r.peak_alloc = gib(s.peak_allocated_bytes);
      rows->push_back(r);
      std::printf("  T=%d loss %.3f step %.1f ms\n", T, loss, med);
      std::fflush(stdout);
    }
    // 60/40 mix: long = the stage length, short = 256..2048 tokens.
    for (int i = 0; i < 5; i++) {
      const int len = rng.below(10) < 6 ? T : 256 + rng.below(2048 - 256 + 1);
      if (!step(m, len, rng, V, &loss, &ms)) return false;
    }
    lcx_memory_stats s{};
    OK(lcx_memory_stats_get(m, &s));
    mix_peak_mapped = std::max(mix_peak_mapped, s.peak_mapped_bytes);
    mix_peak_alloc = std::max(mix_peak_alloc, s.peak_allocated_bytes);
  }
  *mix_mapped = gib(mix_peak_mapped);
  *mix_alloc = gib(mix_peak_alloc);
  if (lean_peak) {
    // Lean mode: bf16 master weights with stochastic rounding, fp32 AdamW moments.
    lcx_train_config lean = train_cfg(1);
    OK(lcx_train_init(m, &lean));
    OK(lcx_memory_reset_peak(m));
    float loss = 0;
    double ms = 0;
    std::vector<double> times;
    for (int i = 0; i < 5; i++) {
      if (!step(m, 8192, rng, V, &loss, &ms)) return false;
      if (i >= 1) times.push_back(ms);
    }
    std::sort(times.begin(), times.end());
    lcx_memory_stats s{};
    OK(lcx_memory_stats_get(m, &s));
    *lean_peak = gib(s.peak_mapped_bytes);
    *lean_tok_s = 8192 / (times[times.size() / 2] / 1000.0);
  }
  lcx_model_free(m);
  return true;
}

// The ruGPT3XL pattern: even layers block-sparse (DeepSpeed fixed: block 16, 8 local blocks,
// 1 global, a different layout per head, 8 global patterns), odd layers dense; at 8192.
bool sparse_alternating(int layers, double* tok_s, double* peak) {
  OK(lcx_cuda_set_allocator(1));
  lcx_config cfg = xl_config(layers, 8192);
  for (int l = 0; l < layers; l += 2) cfg.attn_kind[l] = LCX_ATTN_SPARSE;
  lcx_model* m = nullptr;
  OK(lcx_model_create(&cfg, 1, LCX_BACKEND_CUDA, &m));
  lcx_train_config tc = train_cfg(0);
  OK(lcx_train_init(m, &tc));
  OK(lcx_memory_reset_peak(m));
  Rng rng{7};
  std::vector<double> times;
  float loss = 0;
  double ms = 0;
  for (int i = 0; i < 7; i++) {
    if (!step(m, 8192, rng, cfg.vocab_size, &loss, &ms)) return false;
    if (i >= 2) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  lcx_memory_stats s{};
  OK(lcx_memory_stats_get(m, &s));
  *tok_s = 8192 / (times[times.size() / 2] / 1000.0);
  *peak = gib(s.peak_mapped_bytes);
  lcx_model_free(m);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const char* json = nullptr;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
  }
  if (!(lcx_backends_available() & (1 << LCX_BACKEND_CUDA))) {
    std::printf("SKIP gpu_train_bench: this build has no CUDA backend\n");
    return 0;
  }
  const int layers = quick ? 4 : 24;
  std::vector<Row> rows;
  double mm_e = 0, ma_e = 0, mm_c = 0, ma_c = 0, lean = 0, lean_tok = 0;
  std::printf("== gpu_train_bench: %d x 2048, 16 heads, vocab 50264, batch 1, fp32 master, recompute\n", layers);
  if (!throughput_and_mix(true, layers, true, &rows, &mm_e, &ma_e, &lean, &lean_tok)) return 1;
  double sp_tok = 0, sp_peak = 0;
  if (!sparse_alternating(layers, &sp_tok, &sp_peak)) return 1;
  std::printf("  (classic allocator run)\n");
  std::vector<Row> unused;
  if (!throughput_and_mix(false, layers, false, &unused, &mm_c, &ma_c, nullptr, nullptr)) return 1;

  std::printf("\n%-6s %10s %9s %6s %12s %12s\n", "T", "tokens/s", "step ms", "MFU", "peak mapped", "peak alloc");
  for (const Row& r : rows)
    std::printf("%-6d %10.0f %9.1f %5.1f%% %10.2f GiB %9.2f GiB\n", r.T, r.tok_s, r.step_ms,
                100 * r.mfu, r.peak_mapped, r.peak_alloc);
  std::printf("lean mode (bf16 master + SR) T=8192: %.0f tokens/s, peak mapped %.2f GiB\n", lean_tok, lean);
  std::printf("alternating sparse/dense (ruGPT3XL pattern) T=8192: %.0f tokens/s (dense %.0f), peak mapped %.2f GiB\n",
              sp_tok, rows.empty() ? 0.0 : rows.back().tok_s, sp_peak);
  std::printf("allocator, 2k->4k->8k with 60/40 long/short mix:\n");
  std::printf("  expandable: peak mapped %.2f GiB, peak allocated %.2f GiB (overhead %.1f%%)\n", mm_e,
              ma_e, 100 * (mm_e / ma_e - 1));
  std::printf("  classic:    peak mapped %.2f GiB, peak allocated %.2f GiB (overhead %.1f%%)\n", mm_c,
              ma_c, 100 * (mm_c / ma_c - 1));
  if (json) {
    if (FILE* f = std::fopen(json, "w")) {
      std::fprintf(f, "{\"layers\": %d, \"rows\": [", layers);
      for (size_t i = 0; i < rows.size(); i++)
        std::fprintf(f, "%s{\"T\": %d, \"tok_s\": %.1f, \"step_ms\": %.2f, \"mfu\": %.4f, \"peak_mapped_gib\": %.3f, \"peak_alloc_gib\": %.3f}",
                     i ? ", " : "", rows[i].T, rows[i].tok_s, rows[i].step_ms, rows[i].mfu,
                     rows[i].peak_mapped, rows[i].peak_alloc);
      std::fprintf(f, "], \"lean_peak_gib\": %.3f, \"lean_tok_s\": %.1f, \"sparse_tok_s\": %.1f, \"sparse_peak_gib\": %.3f, \"mix\": {\"expandable\": [%.3f, %.3f], \"classic\": [%.3f, %.3f]}}\n",
                   lean, lean_tok, sp_tok, sp_peak, mm_e, ma_e, mm_c, ma_c);
      std::fclose(f);
    }
  }
  return 0;
}
