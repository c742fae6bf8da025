// The flash-attention kernels against a brute-force GPU reference (every (query, key) pair
// tested with the reference predicate, fp32 math on the same bf16 inputs), for every pattern
// at T = 8192 with packed documents, plus odd sizes (T not a multiple of the tile, B > 1,
// document ids reused across the row, window 1), head sizes 32/64/96/128. Outputs are poisoned
// with NaN first, so an element the kernels never write fails the check. Then a timing table
// (not a test): causal, window and sparse at T = 8192.
//
// Tolerances: the kernels round P and dS to bf16 before their second matrix product and write
// bf16 outputs; against fp32 math on the same bf16 inputs: O rel L2 <= 1e-2, dQ/dK/dV <= 3e-2.
//
// Skips (exit 0) without CUDA or without a GPU.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/config.hpp"
#include "testing.hpp"
#include "tiny_model.hpp"

#ifdef LCX_CUDA
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>

#include "cuda/attention.hpp"

namespace {

using lcx::cuda::bf16;

#define CK(x)                                                                        \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

struct Case {
  std::string name;
  int kind, window, HS, NH, B, T;
  int seg_mode;  // 0 none, 1 packed documents (unique ids), 2 ids reused across the row
  bool timing_only;
  // Sparse: one layout for every head (DeepSpeed's different_layout_per_head = 0).
  bool shared_layout = false;
  // Sparse: the layout's block (0 = the XL config's 16). The kernels read the layout per element
  // only when the block is not a multiple of their 16-token sub-blocks.
  int sparse_block = 0;
};

struct DevPlan {
  lcx::cuda::AttnPlan plan;
  int* bufs[lcx::cuda::kPlanArrays] = {};
  void upload() {
    for (int i = 0; i < lcx::cuda::kPlanArrays; i++) {
      const std::vector<int>& h = plan.h[i];
      CK(cudaMalloc(&bufs[i], h.size() * sizeof(int)));
      CK(cudaMemcpy(bufs[i], h.data(), h.size() * sizeof(int), cudaMemcpyHostToDevice));
      plan.d[i] = bufs[i];
    }
  }
  ~DevPlan() {
    for (int* b : bufs) cudaFree(b);
  }
};

std::vector<int32_t> make_segments(int B, int T, int mode, uint64_t seed) {
  std::vector<int32_t> seg((size_t)B * T, 0);
  tiny::Rng rng(seed);
  for (int b = 0; b < B; b++) {
    int id = 0, left = 0;
    for (int t = 0; t < T; t++) {
      if (left == 0) {
        // Document lengths from a few tokens to a few thousand, like a packed corpus.
        left = 1 + rng.below(rng.below(4) == 0 ? 40 : T / 3 + 1);
        id = mode == 2 ? rng.below(3) : id + (t > 0);
      }
      seg[(size_t)b * T + t] = id;
      left--;
    }
  }
  return seg;
}

float bf(bf16 x) { return __bfloat162float(x); }

// ||got - ref|| / max(||ref||, floor). floor matters only when the true gradient vanishes
// (every query sees only itself: dS = P (dP - dO.O) = 0 exactly), where the kernel's value is
// rounding noise of bf16 O; it is then measured against the scale of dV instead.
double rel_l2_bf(const std::vector<bf16>& got, const std::vector<float>& ref, int B, int T, int NH,
                 int HS, long long row, long long off, bool* nan, double floor = 0) {
  double num = 0, den = 0;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int h = 0; h < NH; h++)
        for (int d = 0; d < HS; d++) {
          const float g = bf(got[((size_t)b * T + t) * row + off + h * HS + d]);
          const float r = ref[(((size_t)b * T + t) * NH + h) * HS + d];
          if (!std::isfinite(g)) *nan = true;
          num += (double)(g - r) * (g - r);
          den += (double)r * r;
        }
  return std::sqrt(num) / std::fmax(std::sqrt(den), std::fmax(floor, 1e-30));
}

double l2(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += (double)x * x;
  return std::sqrt(s);
}

lcx_sparse_config xl_sparse() {
  lcx_sparse_config sc{};
  sc.block = 16;
  sc.num_local_blocks = 8;
  sc.num_global_blocks = 1;
  sc.different_layout_per_head = 1;
  sc.num_different_global_patterns = 8;
  sc.unidirectional = 1;
  return sc;
}

struct Timing {
  double fwd_ms = 0, bwd_ms = 0;
  double frac = 0;  // 16 x 16 sub-blocks computed / those of dense causal attention
};

Timing run(const Case& c, bool check) {
  const int B = c.B, T = c.T, NH = c.NH, HS = c.HS, C = NH * HS;
  const size_t N = (size_t)B * T;
  std::printf("-- %s: kind %d window %d HS %d NH %d B %d T %d seg %d\n", c.name.c_str(), c.kind,
              c.window, HS, NH, B, T, c.seg_mode);
  // qkv packed like the model's activations: (B, T, 3C)
  std::vector<bf16> qkv(N * 3 * C), dout(N * C);
  tiny::Rng rng(1000 + c.HS + c.T + c.kind);
  for (auto& x : qkv) x = __float2bfloat16(rng.normal());
  for (auto& x : dout) x = __float2bfloat16(rng.normal());
  std::vector<int32_t> seg = make_segments(B, T, c.seg_mode, 77 + T);
  std::vector<uint8_t> layout;
  lcx::cuda::AttnPattern pat;
  pat.kind = c.kind;
  pat.window = c.window;
  uint8_t* d_layout = nullptr;
  if (c.kind == LCX_ATTN_SPARSE) {
    lcx_sparse_config sc = xl_sparse();
    if (c.sparse_block) sc.block = c.sparse_block;
    if (c.shared_layout) {
      sc.different_layout_per_head = 0;
      sc.num_different_global_patterns = 1;
    }
    std::vector<uint8_t> full = lcx::fixed_sparse_layout(sc, NH, T);
    pat.nb = (T + sc.block - 1) / sc.block;
    pat.block = sc.block;
    pat.layout_heads = c.shared_layout ? 1 : NH;
    if (c.shared_layout) full.resize((size_t)pat.nb * pat.nb);  // every head's layout is head 0's
    layout = full;
    CK(cudaMalloc(&d_layout, layout.size()));
    CK(cudaMemcpy(d_layout, layout.data(), layout.size(), cudaMemcpyHostToDevice));
    pat.layout_host = layout.data();
    pat.layout_dev = d_layout;
  }
  DevPlan dp;
  lcx::cuda::build_attn_plan(dp.plan, pat, B, T, T, 0, c.seg_mode ? seg.data() : nullptr, true);
  dp.upload();

  bf16 *d_qkv, *d_o, *d_do, *d_dqkv;
  float *d_lse, *d_dvec;
  int32_t* d_seg = nullptr;
  CK(cudaMalloc(&d_qkv, qkv.size() * 2));
  CK(cudaMalloc(&d_o, N * C * 2));
  CK(cudaMalloc(&d_do, N * C * 2));
  CK(cudaMalloc(&d_dqkv, N * 3 * C * 2));
  CK(cudaMalloc(&d_lse, N * NH * 4));
  CK(cudaMalloc(&d_dvec, N * NH * 4));
  CK(cudaMemcpy(d_qkv, qkv.data(), qkv.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d_do, dout.data(), dout.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMemset(d_o, 0xff, N * C * 2));  // bf16 0xffff = NaN: unwritten elements show
  CK(cudaMemset(d_dqkv, 0xff, N * 3 * C * 2));
  if (c.seg_mode) {
    CK(cudaMalloc(&d_seg, N * 4));
    CK(cudaMemcpy(d_seg, seg.data(), N * 4, cudaMemcpyHostToDevice));
  }
  lcx::cuda::AttnArgs a{};
  a.B = B; a.NH = NH; a.HS = HS; a.Tq = T; a.Tk = T;
  a.q = d_qkv; a.k = d_qkv + C; a.v = d_qkv + 2 * C;
  a.q_row = a.kv_row = 3 * C;
  a.q_batch = a.kv_batch = (long long)T * 3 * C;
  a.o = d_o; a.o_row = C; a.o_batch = (long long)T * C;
  a.lse = d_lse;
  a.seg = d_seg; a.seg_batch = T;
  a.dout = d_do; a.dvec = d_dvec;
  a.dq = d_dqkv; a.dk = d_dqkv + C; a.dv = d_dqkv + 2 * C;
  a.dq_row = a.dkv_row = 3 * C;
  a.dq_batch = a.dkv_batch = (long long)T * 3 * C;

  Timing tm;
  {
    const long long nqb = (T + 15) / 16;
    tm.frac = (double)dp.plan.visited_pairs / ((double)B * nqb * (nqb + 1) / 2 * dp.plan.layout_heads);
  }
  lcx::cuda::attention_forward(a, pat, dp.plan, 0);
  lcx::cuda::attention_backward(a, pat, dp.plan, 0);
  CK(cudaDeviceSynchronize());
  if (check) {
    float *r_o, *r_dq, *r_dk, *r_dv;
    CK(cudaMalloc(&r_o, N * C * 4));
    CK(cudaMalloc(&r_dq, N * C * 4));
    CK(cudaMalloc(&r_dk, N * C * 4));
    CK(cudaMalloc(&r_dv, N * C * 4));
    lcx::cuda::attention_reference(a, pat, r_o, r_dq, r_dk, r_dv, 0);
    std::vector<float> ro(N * C), rdq(N * C), rdk(N * C), rdv(N * C);
    CK(cudaMemcpy(ro.data(), r_o, N * C * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(rdq.data(), r_dq, N * C * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(rdk.data(), r_dk, N * C * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(rdv.data(), r_dv, N * C * 4, cudaMemcpyDeviceToHost));
    std::vector<bf16> o(N * C), dqkv(N * 3 * C);
    CK(cudaMemcpy(o.data(), d_o, N * C * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(dqkv.data(), d_dqkv, N * 3 * C * 2, cudaMemcpyDeviceToHost));
    bool nan = false;
    const double eo = rel_l2_bf(o, ro, B, T, NH, HS, C, 0, &nan);
    const double floor = 0.1 * l2(rdv);
    const double eq = rel_l2_bf(dqkv, rdq, B, T, NH, HS, 3 * C, 0, &nan, floor);
    const double ek = rel_l2_bf(dqkv, rdk, B, T, NH, HS, 3 * C, C, &nan, floor);
    const double ev = rel_l2_bf(dqkv, rdv, B, T, NH, HS, 3 * C, 2 * C, &nan);
    std::printf("   O %.2e  dQ %.2e  dK %.2e  dV %.2e  %s  computed %.1f%% of causal\n", eo, eq,
                ek, ev, nan ? "NaN/unwritten!" : "all written", 100 * tm.frac);
    // The backward again: the same bits (no atomics, sums in a fixed order).
    lcx::cuda::attention_backward(a, pat, dp.plan, 0);
    std::vector<bf16> dqkv2(N * 3 * C);
    CK(cudaMemcpy(dqkv2.data(), d_dqkv, N * 3 * C * 2, cudaMemcpyDeviceToHost));
    const bool same = std::memcmp(dqkv.data(), dqkv2.data(), dqkv.size() * 2) == 0;
    if (!same) std::printf("   a second backward gave different bits\n");
    CHECK(same);
    CHECK(!nan);
    CHECK(eo <= 1e-2);
    CHECK(eq <= 3e-2);
    CHECK(ek <= 3e-2);
    CHECK(ev <= 3e-2);
    cudaFree(r_o);
    cudaFree(r_dq);
    cudaFree(r_dk);
    cudaFree(r_dv);
  } else {
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    const int reps = 10;
    std::vector<float> f, bw;
    for (int i = 0; i < reps + 2; i++) {
      CK(cudaEventRecord(e0));
      lcx::cuda::attention_forward(a, pat, dp.plan, 0);
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      float ms;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      if (i >= 2) f.push_back(ms);
      CK(cudaEventRecord(e0));
      lcx::cuda::attention_backward(a, pat, dp.plan, 0);
      CK(cudaEventRecord(e1));
      CK(cudaEventSynchronize(e1));
      CK(cudaEventElapsedTime(&ms, e0, e1));
      if (i >= 2) bw.push_back(ms);
    }
    std::sort(f.begin(), f.end());
    std::sort(bw.begin(), bw.end());
    tm.fwd_ms = f[reps / 2];
    tm.bwd_ms = bw[reps / 2];
  }
  cudaFree(d_qkv);
  cudaFree(d_o);
  cudaFree(d_do);
  cudaFree(d_dqkv);
  cudaFree(d_lse);
  cudaFree(d_dvec);
  cudaFree(d_seg);
  cudaFree(d_layout);
  return tm;
}

}  // namespace
#endif

int main() {
#ifndef LCX_CUDA
  std::printf("SKIP test_cuda_attention: this build has no CUDA backend\n");
  return lcxtest::finish();
#else
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("SKIP test_cuda_attention: no CUDA device\n");
    return lcxtest::finish();
  }
  const int D = LCX_ATTN_DENSE, W = LCX_ATTN_WINDOW, S = LCX_ATTN_SPARSE;
  const std::vector<Case> cases = {
      {"8k dense hs128 packed", D, 0, 128, 4, 1, 8192, 1, false},
      {"8k window hs128 packed", W, 1536, 128, 4, 1, 8192, 1, false},
      {"8k sparse hs128 packed", S, 0, 128, 4, 1, 8192, 1, false},
      {"8k dense hs64 packed", D, 0, 64, 4, 1, 8192, 1, false},
      {"8k window hs64 packed", W, 700, 64, 4, 1, 8192, 1, false},
      {"8k sparse hs64 packed", S, 0, 64, 4, 1, 8192, 1, false},
      {"dense hs64 B2 T1000 reused ids", D, 0, 64, 2, 2, 1000, 2, false},
      {"window=1 hs64 T300", W, 1, 64, 2, 1, 300, 0, false},
      {"sparse hs96 T777", S, 0, 96, 3, 1, 777, 0, false},
      {"window hs32 B3 T129 packed", W, 50, 32, 2, 3, 129, 1, false},
      {"dense hs128 T1", D, 0, 128, 2, 1, 1, 0, false},
      {"8k sparse hs64 one layout for all heads", S, 0, 64, 3, 1, 8192, 0, false, true},
      {"sparse block 24 hs128 T1000 packed", S, 0, 128, 3, 1, 1000, 1, false, false, 24},
      {"sparse block 8 hs64 B2 T700 reused ids", S, 0, 64, 2, 2, 700, 2, false, false, 8},
      {"sparse block 32 hs128 T2000 packed", S, 0, 128, 2, 1, 2000, 1, false, false, 32},
  };
  // LCX_ATTN_TIMING_ONLY=1: the timing table alone (a profiler then sees its launches first).
  const char* timing_only = std::getenv("LCX_ATTN_TIMING_ONLY");
  if (!(timing_only && timing_only[0] == '1'))
    for (const Case& c : cases) {
      run(c, true);
      // On Hopper head dims 64 / 128 run the wgmma kernels: check the mma.sync ones too, which
      // other GPUs (and LCX_ATTN_WGMMA=0) run.
      if (lcx::cuda::attention_wgmma_active(c.HS)) {
        lcx::cuda::attention_set_wgmma(false);
        Case m = c;
        m.name += " (mma.sync kernels)";
        run(m, true);
        lcx::cuda::attention_set_wgmma(true);
      }
    }

  std::printf("== attention timing (H100 expected; median of 10), causal FLOPs = half of dense\n");
  std::printf("%-34s %9s %9s %9s %9s %8s %8s\n", "case", "fwd ms", "fwd TF/s", "bwd ms", "bwd TF/s",
              "work%", "vs dense");
  std::vector<Case> timed = {
      {"dense hs128 NH16 T8192", D, 0, 128, 16, 1, 8192, 0, true},
      {"sparse(XL) hs128 NH16 T8192", S, 0, 128, 16, 1, 8192, 0, true},
      {"window2048 hs128 NH16 T8192", W, 2048, 128, 16, 1, 8192, 0, true},
      {"dense hs64 NH32 T8192", D, 0, 64, 32, 1, 8192, 0, true},
      {"sparse(XL) hs64 NH32 T8192", S, 0, 64, 32, 1, 8192, 0, true},
      {"dense hs128 NH16 T2048 B4", D, 0, 128, 16, 4, 2048, 0, true},
  };
  // LCX_ATTN_SWEEP=1: sliding windows of 64 .. 4096 keys instead (hd128, T = 8192). Their work
  // grows with the window while the number of CTAs stays the same, so the times separate a
  // CTA's fixed cost from its per-tile cost (NOTES.md, run 14).
  const char* sweep = std::getenv("LCX_ATTN_SWEEP");
  if (sweep && sweep[0] == '1') {
    timed.resize(2);
    for (int w : {64, 128, 256, 512, 1024, 2048, 4096})
      timed.push_back({"window" + std::to_string(w) + " hs128 NH16 T8192", W, w, 128, 16, 1, 8192, 0, true});
  }
  double dense_fwd = 0;
  for (const Case& c : timed) {
    const Timing t = run(c, false);
    const double causal_flops = 4.0 * c.B * c.NH * (double)c.T * c.T * c.HS / 2;  // QK^T + PV
    const double frac = t.frac;
    // FLOPs actually needed by the pattern: causal FLOPs scaled by the visited-tile fraction.
    const double flops = causal_flops * frac;
    if (c.kind == D) dense_fwd = t.fwd_ms + t.bwd_ms;
    // "vs dense": this pattern's fwd+bwd time over dense at the same head size (just above).
    std::printf("%-34s %9.3f %9.1f %9.3f %9.1f %7.1f%% %7.1f%%\n", c.name.c_str(), t.fwd_ms,
                flops / t.fwd_ms / 1e9, t.bwd_ms, 2.5 * flops / t.bwd_ms / 1e9, 100 * frac,
                100 * (t.fwd_ms + t.bwd_ms) / dense_fwd);
  }
  (void)dense_fwd;
  // The two kernel families side by side where this GPU has the wgmma ones.
  if (lcx::cuda::attention_wgmma_active(128)) {
    lcx::cuda::attention_set_wgmma(false);
    for (const Case& c : {timed[0], timed[3]}) {
      const Timing t = run(c, false);
      const double flops = 4.0 * c.B * c.NH * (double)c.T * c.T * c.HS / 2 * t.frac;
      std::printf("%-34s %9.3f %9.1f %9.3f %9.1f\n", ("mma.sync: " + c.name).c_str(), t.fwd_ms,
                  flops / t.fwd_ms / 1e9, t.bwd_ms, 2.5 * flops / t.bwd_ms / 1e9);
    }
    lcx::cuda::attention_set_wgmma(true);
  }
  return lcxtest::finish();
#endif
}
