// GPU training benchmark (not a test): the ruGPT3XL-sized model (24 x 2048, 16 heads, head size
// 128, vocab 50264, ~1.33B parameters), full fine-tuning, batch 1 (and 4, 6, 8 at 2048, 2 at
// 8192), through
// the C API exactly as the app drives it. Parts (all by default, --parts picks some):
//   dense   standard mode (fp32 master weights, bf16 gradients of the layer matrices: every step
//           here is one micro-batch, as the app runs it then): create at 2048 positions, train,
//           extend positions by tiling to 4096, 8192, 16384,
//           training at each: tokens/s, step time, MFU, peak memory per length; at 2048 also
//           batches 4, 6 and 8 (the anchor's best at 2048 is a compiled batch-1 run, its batch-4
//           run reserved 25.3 GiB), at 8192 batch 2 (the anchor's batch 1 reserved 25.5 GiB);
//           at 2k/4k/8k also a 60/40 mix of long/short examples (the allocator's
//           expandable-mode peak).
//   sparse  the same lengths with the ruGPT3XL pattern (even layers block-sparse, odd dense).
//   lean    bf16 master weights + stochastic rounding (fp32 gradients, as in earlier runs) at
//           8192: tokens/s and peak memory.
//   alloc   the 2k -> 4k -> 8k mix again with the classic allocator (mapped vs allocated).
//   loss    fp32 master with fp32 gradients, fp32 master with bf16 matrix gradients, and lean
//           (fp32 gradients), same seed, same data, 200 steps at 2048 on a learnable synthetic
//           corpus: the three loss curves.
// Writes everything measured so far to --json after each part, so a call that runs out of time
// still leaves the finished parts (native/bench/gpu_report.py reads the file).
//
// Usage: gpu_train_bench [--json out.json] [--parts dense,sparse,lean,alloc,loss]
//                        [--loss-steps N] [--quick] [--smoke]
//        gpu_train_bench --profile T [--batch B] [--sparse]
//   --profile: two warm-up steps at T (batch B), then one step inside the profiler range
//              (native/tests/cuda/profile_step.sh runs it under ncu).
//   --quick: 4 layers (a smoke run of the real widths on a GPU).
//   --smoke: a 2 x 128 model at lengths 128..1024, on the CPU backend when there is no CUDA;
//            checks the bench's own flow and JSON on a machine without a GPU.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "longctx.h"
#include "profile_range.hpp"

namespace {

// H100 SXM dense bf16 tensor-core peak (the same figure on an H200).
constexpr double kPeakFlops = 989e12;

double gib(int64_t b) { return b / 1073741824.0; }

std::vector<std::string> g_errors;  // every failed call, carried into the JSON

#define OK(call)                                                                     \
  do {                                                                               \
    lcx_status s_ = (call);                                                          \
    if (s_ != LCX_OK) {                                                              \
      std::printf("ERROR %s: %s\n", #call, lcx_last_error());                        \
      g_errors.push_back(std::string(#call) + ": " + lcx_last_error());              \
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
  double uniform() { return (next() >> 11) * 0x1.0p-53; }
};

// What the bench runs; --smoke shrinks it, --quick cuts layers.
struct Setup {
  int backend = LCX_BACKEND_CUDA;
  int layers = 24, embd = 2048, heads = 16, inner = 8192, vocab = 50264;
  std::vector<int> lengths = {2048, 4096, 8192, 16384};
  size_t mix_stages = 3;  // the long/short mix at 2k/4k/8k only: classic mode at 16k would not fit
  // Extra batches timed at some lengths (dense only): the issue allows any batch that fits the
  // anchor's memory (DEVICE.md: 25.3 GiB for its batch-4 run at 2048, 25.5 GiB for batch 1 at
  // 8192). Each step is still one micro-batch of B rows: the fixed per-step work (AdamW over
  // 1.33e9 parameters, the gradient norm) is shared by B sequences.
  std::vector<std::pair<int, std::vector<int>>> extra_batches = {{2048, {4, 6, 8}}, {8192, {2}}};
  const std::vector<int>* batches_at(int T) const {
    for (const auto& e : extra_batches)
      if (e.first == T) return &e.second;
    return nullptr;
  }
  int lean_T = 8192;
  int loss_T = 2048;
  int loss_steps = 200;
  float loss_lr = 5e-5f;  // what the app plans for a >= 1B model (src-main/core/runs/plan.ts)
  int loss_warmup = 10;
  std::string parts = "dense,sparse,lean,alloc,loss";
  bool wants(const char* p) const { return ("," + parts + ",").find(std::string(",") + p + ",") != std::string::npos; }
};

lcx_config model_config(const Setup& s, int n_positions, bool alternating_sparse) {
  lcx_config c;
  std::memset(&c, 0, sizeof c);
  c.arch = LCX_ARCH_GPT2;
  c.vocab_size = s.vocab;
  c.n_positions = n_positions;
  c.n_embd = s.embd;
  c.n_layer = s.layers;
  c.n_head = s.heads;
  c.n_inner = s.inner;
  c.layer_norm_eps = 1e-5f;
  // The ruGPT3XL pattern: even layers block-sparse (DeepSpeed fixed: block 16, 8 local blocks,
  // 1 global, a different layout per head, 8 global patterns), odd layers dense.
  for (int l = 0; l < s.layers; l++)
    c.attn_kind[l] = alternating_sparse && l % 2 == 0 ? LCX_ATTN_SPARSE : LCX_ATTN_DENSE;
  c.sparse.block = 16;
  c.sparse.num_local_blocks = 8;
  c.sparse.num_global_blocks = 1;
  c.sparse.different_layout_per_head = 1;
  c.sparse.num_different_global_patterns = 8;
  c.sparse.unidirectional = 1;
  return c;
}

// Standard mode as the app runs a step of one micro-batch: bf16 gradients of the layer matrices
// (lcx_train_config.grad_dtype = 1). Every step of the dense, sparse and allocator runs is one
// forward_backward (batch 1, 4 or 6 rows), so they all use it.
constexpr int kStandardGrads = 1;

lcx_train_config train_cfg(int master, int grads) {
  lcx_train_config t{};
  t.beta1 = 0.9f;
  t.beta2 = 0.999f;  // torch AdamW defaults, as the anchor
  t.eps = 1e-8f;
  t.weight_decay = 0.01f;
  t.grad_clip = 1.0f;
  t.recompute = 1;
  t.master_dtype = master;
  t.grad_dtype = grads;
  t.seed = 1;
  return t;
}

// Frees the model on every return path, so a failed part does not hold memory for the next.
struct ModelDeleter {
  void operator()(lcx_model* m) const { lcx_model_free(m); }
};
using ModelPtr = std::unique_ptr<lcx_model, ModelDeleter>;

bool create(const Setup& s, const lcx_config& cfg, int master, int grads, ModelPtr* out) {
  lcx_model* m = nullptr;
  OK(lcx_model_create(&cfg, 1, s.backend, &m));
  out->reset(m);
  const lcx_train_config tc = train_cfg(master, grads);
  OK(lcx_train_init(m, &tc));
  return true;
}

std::vector<int32_t> random_tokens(Rng& rng, int T, int V) {
  std::vector<int32_t> tok(T);
  for (auto& t : tok) t = rng.below(V);
  return tok;
}

// A learnable stream for the loss comparison: a Markov chain over 1024 token ids spread across
// the vocabulary, each with 4 successors of probabilities .55/.25/.12/.08 (entropy 1.13 nats).
// A model that learns it goes from ln V (10.8) towards 1.13; on uniform random tokens the loss
// would stay at ln V and show nothing about the master weights' precision.
struct MarkovCorpus {
  static constexpr int kStates = 1024, kSuccessors = 4;
  std::vector<int32_t> token_of;
  std::vector<int> successor;  // kStates x kSuccessors state indices
  MarkovCorpus(int V, uint64_t seed) : token_of(kStates), successor(kStates * kSuccessors) {
    Rng rng{seed};
    for (auto& t : token_of) t = rng.below(V);
    for (auto& n : successor) n = rng.below(kStates);
  }
  std::vector<int32_t> sequence(Rng& rng, int T) const {
    static const double cumulative[kSuccessors] = {0.55, 0.80, 0.92, 1.0};
    std::vector<int32_t> tok(T);
    int state = rng.below(kStates);
    for (int i = 0; i < T; i++) {
      tok[i] = token_of[state];
      const double u = rng.uniform();
      int k = 0;
      while (k + 1 < kSuccessors && u >= cumulative[k]) k++;
      state = successor[state * kSuccessors + k];
    }
    return tok;
  }
};

// One optimizer step on B rows of tok.size() / B tokens (targets = next token, each row's last
// unscored).
bool train_step(lcx_model* m, const std::vector<int32_t>& tok, float lr, float* loss, double* ms,
                int B = 1) {
  const int T = (int)tok.size() / B;
  std::vector<int32_t> tgt(tok.size());
  for (size_t i = 0; i < tok.size(); i++) tgt[i] = (int)(i % T) + 1 < T ? tok[i + 1] : -1;
  lcx_batch b{tok.data(), tgt.data(), nullptr, B, T};
  const auto t0 = std::chrono::steady_clock::now();
  OK(lcx_zero_grad(m));
  OK(lcx_forward_backward(m, &b, 1.0f, loss));
  float norm = 0;
  OK(lcx_optimizer_step(m, lr, &norm));  // synchronises (the norm comes back to the host)
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
  int T = 0, batch = 1, grads = 0;  // grads: lcx_train_config.grad_dtype
  double tok_s = 0, step_ms = 0, mfu = 0;  // mfu only for all-dense models (sparse does less work)
  double peak_mapped = 0, peak_alloc = 0;  // since the start of this length's timed steps
};

// `steps` steps of B x T random tokens, the first `warm` untimed; median step time and peak memory.
bool timed_steps(lcx_model* m, const lcx_config& cfg, int T, int steps, int warm, Rng& rng, Row* r,
                 int B = 1) {
  OK(lcx_memory_reset_peak(m));
  std::vector<double> times;
  float loss = 0;
  double ms = 0;
  for (int i = 0; i < steps; i++) {
    if (!train_step(m, random_tokens(rng, B * T, cfg.vocab_size), 1e-5f, &loss, &ms, B)) return false;
    if (i >= warm) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  lcx_memory_stats st{};
  OK(lcx_memory_stats_get(m, &st));
  r->T = T;
  r->batch = B;
  r->step_ms = times[times.size() / 2];
  r->tok_s = (double)B * T / (r->step_ms / 1000.0);
  r->peak_mapped = gib(st.peak_mapped_bytes);
  r->peak_alloc = gib(st.peak_allocated_bytes);
  std::printf("  T=%d batch %d loss %.3f step %.1f ms, %.0f tokens/s, peak mapped %.2f GiB\n", T, B,
              loss, r->step_ms, r->tok_s, r->peak_mapped);
  std::fflush(stdout);
  return true;
}

struct MixPeak {
  double mapped = 0, alloc = 0;
};

// Create at the first length, then grow the positions by tiling (as the app extends a model)
// through every length: timed steps (when `timed`) and, for the first mix_stages lengths, the
// 60/40 long/short mix (long = the stage length, short = 256..2048 tokens, scaled in --smoke).
bool scaling(const Setup& s, bool alternating_sparse, bool expandable, bool timed,
             std::vector<Row>* rows, MixPeak* mix) {
  if (s.backend == LCX_BACKEND_CUDA) OK(lcx_cuda_set_allocator(expandable ? 1 : 0));
  lcx_config cfg = model_config(s, s.lengths[0], alternating_sparse);
  ModelPtr m;
  if (!create(s, cfg, 0, kStandardGrads, &m)) return false;
  Rng rng{alternating_sparse ? 7ULL : 42ULL};
  const int short_min = s.lengths[0] / 8, short_max = s.lengths[0];
  for (size_t k = 0; k < s.lengths.size(); k++) {
    const int T = s.lengths[k];
    if (!timed && k >= s.mix_stages) break;
    if (T > cfg.n_positions) {
      OK(lcx_extend_positions(m.get(), T, LCX_EXTEND_TILE, 0));
      cfg.n_positions = T;
    }
    if (timed) {
      Row r;
      r.grads = kStandardGrads;
      if (!timed_steps(m.get(), cfg, T, 8, 2, rng, &r)) return false;
      if (!alternating_sparse) r.mfu = r.tok_s * flops_per_token(cfg, T) / kPeakFlops;
      rows->push_back(r);
    } else {
      OK(lcx_memory_reset_peak(m.get()));
    }
    if (mix && k < s.mix_stages) {
      float loss = 0;
      double ms = 0;
      for (int i = 0; i < 5; i++) {
        const int len = rng.below(10) < 6 ? T : short_min + rng.below(short_max - short_min + 1);
        if (!train_step(m.get(), random_tokens(rng, len, cfg.vocab_size), 1e-5f, &loss, &ms)) return false;
      }
      lcx_memory_stats st{};
      OK(lcx_memory_stats_get(m.get(), &st));
      mix->mapped = std::max(mix->mapped, gib(st.peak_mapped_bytes));
      mix->alloc = std::max(mix->alloc, gib(st.peak_allocated_bytes));
    }
    // Larger batches last at this length: their activation buffers stay mapped until the next
    // extension frees them, and would otherwise count in the mix's peak (run 8's mix read
    // 24.26 GiB, batch 6's buffers, instead of the mix's own).
    if (timed && !alternating_sparse && s.batches_at(T))
      for (int B : *s.batches_at(T)) {
        Row rb;
        rb.grads = kStandardGrads;
        if (!timed_steps(m.get(), cfg, T, 6, 2, rng, &rb, B)) return false;
        rb.mfu = rb.tok_s * flops_per_token(cfg, T) / kPeakFlops;
        rows->push_back(rb);
      }
  }
  return true;
}

// Lean mode (bf16 master weights with stochastic rounding, fp32 AdamW moments) at lean_T, on a
// fresh model so nothing of an fp32 run is left in the peak.
bool lean_speed(const Setup& s, Row* r) {
  if (s.backend == LCX_BACKEND_CUDA) OK(lcx_cuda_set_allocator(1));
  const lcx_config cfg = model_config(s, s.lean_T, false);
  ModelPtr m;
  if (!create(s, cfg, 1, 0, &m)) return false;
  Rng rng{11};
  if (!timed_steps(m.get(), cfg, s.lean_T, 5, 1, rng, r)) return false;
  r->mfu = r->tok_s * flops_per_token(cfg, s.lean_T) / kPeakFlops;
  return true;
}

// loss_steps steps on the Markov corpus, linear warm-up then constant lr; same model seed and
// same data for every master / gradient precision.
bool loss_curve(const Setup& s, int master, int grads, std::vector<float>* curve) {
  if (s.backend == LCX_BACKEND_CUDA) OK(lcx_cuda_set_allocator(1));
  const lcx_config cfg = model_config(s, s.loss_T, false);
  ModelPtr m;
  if (!create(s, cfg, master, grads, &m)) return false;
  const char* label = master ? "lean" : grads ? "bf16 grads" : "fp32";
  const MarkovCorpus corpus(cfg.vocab_size, 2026);
  Rng data{99};
  for (int i = 0; i < s.loss_steps; i++) {
    const float lr = s.loss_lr * std::min(1.0f, (i + 1) / (float)s.loss_warmup);
    float loss = 0;
    double ms = 0;
    if (!train_step(m.get(), corpus.sequence(data, s.loss_T), lr, &loss, &ms)) return false;
    curve->push_back(loss);
    if (i % 50 == 0 || i + 1 == s.loss_steps)
      std::printf("  %s step %d loss %.4f (%.0f ms)\n", label, i, loss, ms);
  }
  std::fflush(stdout);
  return true;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); i++) d = std::max(d, (double)std::fabs(a[i] - b[i]));
  return d;
}

double mean_last(const std::vector<float>& v, size_t n) {
  if (v.empty()) return 0;
  n = std::min(n, v.size());
  double sum = 0;
  for (size_t i = v.size() - n; i < v.size(); i++) sum += v[i];
  return sum / n;
}

// ---- JSON (rewritten after each part)

std::string quoted(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    o += (unsigned char)ch < 0x20 ? ' ' : ch;
  }
  return o + "\"";
}

const char* grads_name(int grads) { return grads ? "bf16" : "fp32"; }

std::string rows_json(const std::vector<Row>& rows) {
  std::string o = "[";
  char buf[256];
  for (size_t i = 0; i < rows.size(); i++) {
    const Row& r = rows[i];
    std::snprintf(buf, sizeof buf,
                  "%s{\"T\": %d, \"batch\": %d, \"grads\": \"%s\", \"tok_s\": %.1f, \"step_ms\": %.2f, "
                  "\"mfu\": %.4f, \"peak_mapped_gib\": %.3f, \"peak_alloc_gib\": %.3f}",
                  i ? ", " : "", r.T, r.batch, grads_name(r.grads), r.tok_s, r.step_ms, r.mfu, r.peak_mapped,
                  r.peak_alloc);
    o += buf;
  }
  return o + "]";
}

std::string curve_json(const std::vector<float>& v) {
  std::string o = "[";
  char buf[32];
  for (size_t i = 0; i < v.size(); i++) {
    std::snprintf(buf, sizeof buf, "%s%.4f", i ? ", " : "", v[i]);
    o += buf;
  }
  return o + "]";
}

struct Results {
  std::vector<Row> dense, sparse;
  Row lean;
  MixPeak mix_expandable, mix_classic;
  std::vector<float> loss_fp32, loss_bf16_grads, loss_lean;
  std::vector<std::string> done;  // parts that finished
};

void write_json(const char* path, const Setup& s, const Results& r) {
  if (!path) return;
  std::string o;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"model\": {\"layers\": %d, \"n_embd\": %d, \"n_head\": %d, \"vocab\": %d}, "
                "\"backend\": %s, \"peak_tflops\": %.0f,\n",
                s.layers, s.embd, s.heads, s.vocab, s.backend == LCX_BACKEND_CUDA ? "\"cuda\"" : "\"cpu\"",
                kPeakFlops / 1e12);
  o += buf;
  o += " \"parts_done\": [";
  for (size_t i = 0; i < r.done.size(); i++) o += (i ? ", " : "") + quoted(r.done[i]);
  o += "],\n \"dense\": " + rows_json(r.dense) + ",\n \"sparse\": " + rows_json(r.sparse) + ",\n";
  if (r.lean.T) {
    std::snprintf(buf, sizeof buf, " \"lean\": {\"T\": %d, \"grads\": \"%s\", \"tok_s\": %.1f, \"mfu\": %.4f, \"peak_mapped_gib\": %.3f, \"peak_alloc_gib\": %.3f},\n",
                  r.lean.T, grads_name(r.lean.grads), r.lean.tok_s, r.lean.mfu, r.lean.peak_mapped, r.lean.peak_alloc);
    o += buf;
  }
  std::snprintf(buf, sizeof buf,
                " \"mix\": {\"lengths\": [%d, %d, %d], \"expandable\": [%.3f, %.3f], \"classic\": [%.3f, %.3f]},\n",
                s.lengths[0], s.lengths[1], s.lengths[2], r.mix_expandable.mapped, r.mix_expandable.alloc,
                r.mix_classic.mapped, r.mix_classic.alloc);
  o += buf;
  if (!r.loss_fp32.empty() || !r.loss_bf16_grads.empty() || !r.loss_lean.empty()) {
    std::snprintf(buf, sizeof buf,
                  " \"loss_compare\": {\"T\": %d, \"steps\": %d, \"lr\": %g, \"warmup_steps\": %d, "
                  "\"corpus\": \"Markov chain, 1024 states x 4 successors (.55/.25/.12/.08), entropy 1.13 nats\", "
                  "\"max_abs_diff\": %.4f,\n",
                  s.loss_T, s.loss_steps, s.loss_lr, s.loss_warmup, max_abs_diff(r.loss_fp32, r.loss_lean));
    o += buf;
    // max_abs_diff above: lean vs fp32 (as before the bf16-gradient run); each run's own vs fp32.
    struct Run {
      const char* key;
      int grads;
      const std::vector<float>& curve;
    };
    const Run runs[] = {{"fp32", 0, r.loss_fp32}, {"bf16_grads", 1, r.loss_bf16_grads}, {"lean", 0, r.loss_lean}};
    for (int k = 0; k < 3; k++) {
      const std::vector<float>& v = runs[k].curve;
      std::snprintf(buf, sizeof buf,
                    "  \"%s\": {\"grads\": \"%s\", \"first\": %.4f, \"last\": %.4f, \"mean_last20\": %.4f, "
                    "\"max_abs_diff_vs_fp32\": %.4f, \"curve\": ",
                    runs[k].key, grads_name(runs[k].grads), v.empty() ? 0.0 : v.front(), v.empty() ? 0.0 : v.back(),
                    mean_last(v, 20), max_abs_diff(r.loss_fp32, v));
      o += buf + curve_json(v) + (k == 2 ? "}},\n" : "},\n");
    }
  }
  o += " \"errors\": [";
  for (size_t i = 0; i < g_errors.size(); i++) o += (i ? ", " : "") + quoted(g_errors[i]);
  o += "]}\n";
  if (FILE* f = std::fopen(path, "w")) {
    std::fputs(o.c_str(), f);
    std::fclose(f);
  } else {
    std::printf("ERROR cannot write %s\n", path);
  }
}

void print_rows(const char* title, const std::vector<Row>& rows) {
  std::printf("%s\n%-6s %5s %10s %9s %6s %12s %12s\n", title, "T", "batch", "tokens/s", "step ms", "MFU",
              "peak mapped", "peak alloc");
  for (const Row& r : rows)
    std::printf("%-6d %5d %10.0f %9.1f %5.1f%% %10.2f GiB %9.2f GiB\n", r.T, r.batch, r.tok_s, r.step_ms,
                100 * r.mfu, r.peak_mapped, r.peak_alloc);
}

// --profile: one step of B x T inside the profiler range, after two warm-up steps (cuBLASLt's
// heuristic queries, buffer growth). Prints the step time measured outside any profiler too.
bool profile_step(const Setup& s, int T, int B, bool alternating_sparse) {
  const lcx_config cfg = model_config(s, T, alternating_sparse);
  ModelPtr m;
  if (!create(s, cfg, 0, kStandardGrads, &m)) return false;
  Rng rng{5};
  Row r;
  if (!timed_steps(m.get(), cfg, T, 3, 1, rng, &r, B)) return false;
  float loss = 0;
  double ms = 0;
  const std::vector<int32_t> tok = random_tokens(rng, B * T, cfg.vocab_size);
  profile_begin();
  const bool ok = train_step(m.get(), tok, 1e-5f, &loss, &ms, B);
  profile_end();
  std::printf("profiled step: T=%d batch %d%s, %.1f ms under the profiler (%.1f ms without)\n", T, B,
              alternating_sparse ? " sparse" : "", ms, r.step_ms);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Setup s;
  const char* json = nullptr;
  bool quick = false, smoke = false, sparse = false;
  int profile_T = 0, batch = 1;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--smoke")) smoke = true;
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    if (!std::strcmp(argv[i], "--parts") && i + 1 < argc) s.parts = argv[++i];
    if (!std::strcmp(argv[i], "--loss-steps") && i + 1 < argc) s.loss_steps = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--profile") && i + 1 < argc) profile_T = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::max(1, std::atoi(argv[++i]));
    if (!std::strcmp(argv[i], "--sparse")) sparse = true;
  }
  const bool have_cuda = lcx_backends_available() & (1 << LCX_BACKEND_CUDA);
  if (smoke) {
    s.backend = have_cuda ? LCX_BACKEND_CUDA : LCX_BACKEND_CPU;
    s.layers = 2, s.embd = 128, s.heads = 4, s.inner = 512;
    s.vocab = 2048;  // a 50264-wide classifier made the CPU smoke run ~50 s
    s.lengths = {128, 256, 512, 1024};
    s.extra_batches = {{128, {4, 6, 8}}, {512, {2}}};
    s.lean_T = 512, s.loss_T = 128;
    s.loss_lr = 1e-3f;  // a tiny model needs a larger step to show learning in 200 steps
  } else if (!have_cuda) {
    std::printf("SKIP gpu_train_bench: this build has no CUDA backend (--smoke runs a tiny model on the CPU)\n");
    return 0;
  }
  if (quick) s.layers = 4;
  if (profile_T > 0) return profile_step(s, profile_T, batch, sparse) ? 0 : 1;
  std::printf("== gpu_train_bench: %d x %d, %d heads, vocab %d, batch 1, recompute, backend %s, parts %s\n",
              s.layers, s.embd, s.heads, s.vocab, s.backend == LCX_BACKEND_CUDA ? "cuda" : "cpu",
              s.parts.c_str());
  Results r;
  const auto t_start = std::chrono::steady_clock::now();
  auto finished = [&](const char* part, bool ok) {
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::printf("  -- part %s %s (%.0f s since start)\n", part, ok ? "done" : "FAILED", sec);
    if (ok) r.done.push_back(part);
    write_json(json, s, r);
  };

  if (s.wants("dense")) {
    std::printf("dense, fp32 master + bf16 matrix gradients, positions grown by tiling:\n");
    finished("dense", scaling(s, false, true, true, &r.dense, &r.mix_expandable));
  }
  if (s.wants("lean")) {
    std::printf("lean mode (bf16 master + stochastic rounding, fp32 gradients) at T=%d:\n", s.lean_T);
    finished("lean", lean_speed(s, &r.lean));
  }
  if (s.wants("sparse")) {
    std::printf("alternating sparse/dense (ruGPT3XL pattern), fp32 master + bf16 matrix gradients:\n");
    finished("sparse", scaling(s, true, true, true, &r.sparse, nullptr));
  }
  if (s.wants("alloc") && s.backend == LCX_BACKEND_CUDA) {
    std::printf("classic allocator, the same long/short mix:\n");
    finished("alloc", scaling(s, false, false, false, nullptr, &r.mix_classic));
  }
  if (s.wants("loss") && s.loss_steps > 0) {
    std::printf("loss, fp32 master with fp32 / bf16 gradients vs lean: %d steps at T=%d, Markov corpus\n",
                s.loss_steps, s.loss_T);
    const bool ok = loss_curve(s, 0, 0, &r.loss_fp32) && loss_curve(s, 0, 1, &r.loss_bf16_grads) &&
                    loss_curve(s, 1, 0, &r.loss_lean);
    finished("loss", ok);
  }

  std::printf("\n");
  print_rows("dense (fp32 master, bf16 matrix gradients):", r.dense);
  print_rows("alternating sparse/dense:", r.sparse);
  if (r.lean.T)
    std::printf("lean mode (bf16 master + SR) T=%d: %.0f tokens/s, peak mapped %.2f GiB\n", r.lean.T,
                r.lean.tok_s, r.lean.peak_mapped);
  if (r.mix_expandable.alloc > 0 || r.mix_classic.alloc > 0) {
    std::printf("allocator, %d->%d->%d with 60/40 long/short mix:\n", s.lengths[0], s.lengths[1], s.lengths[2]);
    for (const auto& [name, mp] : {std::pair<const char*, MixPeak>{"expandable", r.mix_expandable},
                                   {"classic", r.mix_classic}})
      if (mp.alloc > 0)
        std::printf("  %-10s peak mapped %.2f GiB, peak allocated %.2f GiB (overhead %.1f%%)\n", name,
                    mp.mapped, mp.alloc, 100 * (mp.mapped / mp.alloc - 1));
  }
  if (!r.loss_fp32.empty() && !r.loss_bf16_grads.empty() && !r.loss_lean.empty())
    std::printf("loss over %d steps: fp32 %.3f -> %.3f (last 20: %.3f), bf16 grads %.3f -> %.3f (last 20: %.3f), "
                "lean %.3f -> %.3f (last 20: %.3f)\n",
                s.loss_steps, r.loss_fp32.front(), r.loss_fp32.back(), mean_last(r.loss_fp32, 20),
                r.loss_bf16_grads.front(), r.loss_bf16_grads.back(), mean_last(r.loss_bf16_grads, 20),
                r.loss_lean.front(), r.loss_lean.back(), mean_last(r.loss_lean, 20));
  return g_errors.empty() ? 0 : 1;
}
