// Host side of the attention plan: which 64 x 64 (query, key) tiles a pattern can reach.
// Decisions are conservative in one direction only: a tile is skipped only when no element of
// it can be allowed by lcx::attends, and marked "fully visible" only when every element is.
#include <algorithm>
#include <numeric>

#include "../core/error.hpp"
#include "attention.hpp"
#include "longctx.h"

namespace lcx::cuda {

namespace {

struct SegInfo {
  bool present = false;
  bool runs_unique = true;     // every id forms one contiguous run: documents are intervals
  std::vector<int> doc_start;  // per token, start of its run
};

SegInfo seg_info(const int32_t* seg, int T) {
  SegInfo s;
  if (!seg) return s;
  s.present = true;
  s.doc_start.resize(T);
  std::vector<int32_t> seen;
  for (int t = 0; t < T; t++) {
    if (t == 0 || seg[t] != seg[t - 1]) {
      // A new run; if its id appeared in an earlier run, tokens may attend across the gap, so
      // interval reasoning is off and every tile gets the element mask.
      seen.push_back(seg[t]);
      s.doc_start[t] = t;
    } else {
      s.doc_start[t] = s.doc_start[t - 1];
    }
  }
  std::vector<int32_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  s.runs_unique = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  return s;
}

// 0 = skip, 1 = visit with element mask, 2 = visit, fully visible.
int tile_state(const AttnPattern& pat, int hl, int q0, int q1, int k0, int k1, bool partial,
               const SegInfo& si) {
  // causal
  if (k0 > q1) return 0;
  bool full = k1 <= q0 && !partial;
  if (pat.kind == LCX_ATTN_WINDOW) {
    const int w = pat.window;
    if (k1 < q0 - w + 1) return 0;  // every key too far behind every query
    if (q1 - k0 >= w) full = false;
  } else if (pat.kind == LCX_ATTN_SPARSE) {
    const int bs = pat.block, nb = pat.nb;
    const uint8_t* lay = pat.layout_host + (size_t)hl * nb * nb;
    bool any = false, all = true;
    for (int qb = q0 / bs; qb <= q1 / bs; qb++)
      for (int kb = k0 / bs; kb <= std::min(k1, q1) / bs; kb++) {
        // Only block pairs that hold a causal pair matter for "any".
        const bool on = lay[(size_t)qb * nb + kb] != 0;
        if (on && kb * bs <= std::min(q1, (qb + 1) * bs - 1)) any = true;
        if (!on) all = false;
      }
    if (!any) return 0;
    if (!all) full = false;
  }
  if (si.present) {
    if (si.runs_unique) {
      // Queries q0..q1 attend only keys >= the start of the first query's document.
      if (k1 < si.doc_start[q0]) return 0;
      if (si.doc_start[q1] > k0) full = false;  // a document boundary inside the span
    } else {
      full = false;
    }
  }
  return full ? 2 : 1;
}

}  // namespace

void build_attn_plan(AttnPlan& plan, const AttnPattern& pat, int B, int Tq, int Tk, int q_offset,
                     const int32_t* seg_host, bool with_backward) {
  constexpr int TL = kAttnTile;
  if (pat.kind == LCX_ATTN_SPARSE && (pat.nb * pat.block < q_offset + Tq || !pat.layout_host))
    fail(LCX_ERR_ARG, "sparse attention: %d tokens exceed the layout built for %d positions",
         q_offset + Tq, pat.nb * pat.block);
  if (pat.kind == LCX_ATTN_WINDOW && pat.window < 1)
    fail(LCX_ERR_ARG, "sliding-window attention needs window >= 1, got %d", pat.window);
  const int LH = pat.kind == LCX_ATTN_SPARSE ? pat.layout_heads : 1;
  plan.B = B;
  plan.Tq = Tq;
  plan.Tk = Tk;
  plan.q_offset = q_offset;
  plan.layout_heads = LH;
  plan.nqt = (Tq + TL - 1) / TL;
  plan.nkt = (Tk + TL - 1) / TL;
  const int nqt = plan.nqt, nkt = plan.nkt;
  plan.fwd_off.assign((size_t)B * LH * nqt + 1, 0);
  plan.fwd_ent.clear();
  std::vector<std::vector<int>> per_key;
  if (with_backward) per_key.assign((size_t)B * LH * nkt, {});
  plan.visited_tiles = 0;
  for (int b = 0; b < B; b++) {
    // Segments index absolute positions (keys), which is where queries live too.
    const SegInfo si = seg_info(seg_host ? seg_host + (size_t)b * Tk : nullptr, Tk);
    for (int hl = 0; hl < LH; hl++) {
      for (int qt = 0; qt < nqt; qt++) {
        const size_t li = ((size_t)b * LH + hl) * nqt + qt;
        plan.fwd_off[li] = (int)plan.fwd_ent.size();
        const int q0 = q_offset + qt * TL, q1 = q_offset + std::min(Tq, (qt + 1) * TL) - 1;
        const bool q_partial = (qt + 1) * TL > Tq;
        for (int kt = 0; kt < nkt; kt++) {
          const int k0 = kt * TL, k1 = std::min(Tk, (kt + 1) * TL) - 1;
          const bool partial = q_partial || (kt + 1) * TL > Tk;
          const int st = tile_state(pat, hl, q0, q1, k0, k1, partial, si);
          if (!st) continue;
          const int mask = st == 1 ? 1 : 0;
          plan.fwd_ent.push_back((kt << 1) | mask);
          if (with_backward) per_key[((size_t)b * LH + hl) * nkt + kt].push_back((qt << 1) | mask);
          plan.visited_tiles++;
        }
      }
    }
  }
  plan.fwd_off.back() = (int)plan.fwd_ent.size();
  if (plan.fwd_ent.empty()) plan.fwd_ent.push_back(0);  // keep device buffers non-empty
  plan.bwd_off.clear();
  plan.bwd_ent.clear();
  if (with_backward) {
    plan.bwd_off.reserve(per_key.size() + 1);
    for (auto& v : per_key) {
      plan.bwd_off.push_back((int)plan.bwd_ent.size());
      plan.bwd_ent.insert(plan.bwd_ent.end(), v.begin(), v.end());
    }
    plan.bwd_off.push_back((int)plan.bwd_ent.size());
    if (plan.bwd_ent.empty()) plan.bwd_ent.push_back(0);
  }
}

}  // namespace lcx::cuda
