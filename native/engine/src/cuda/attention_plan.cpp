// Host side of the attention plan: which 64 x 64 (query, key) tiles a pattern can reach.
// Decisions are conservative in one direction only: a tile is skipped only when no element of
// it can be allowed by lcx::attends, and marked "fully visible" only when every element is.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
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

// Everything one (batch row, layout head) contributes to the plan.
struct Part {
  std::vector<int> fwd_count, fwd_blk, fwd_flags;            // per query tile: virtual tiles
  std::vector<int> grp_blk, bwd_count, bwd_blk, bwd_flags;   // per key group
  long long tiles = 0, pairs = 0;
};

constexpr int TL = kAttnTile, KB = kAttnBlock, kElem = 1 << 16;

// LCX_ATTN_DKV_DESC=0: dkv lists run upwards as before run 14 (A/B runs; read once).
bool dkv_descending() {
  static const bool on = attn_env_digit("LCX_ATTN_DKV_DESC", 1) != 0;
  return on;
}

void build_part(const AttnPattern& pat, int hl, const SegInfo& si, int Tq, int Tk, int q_offset,
                bool backward, bool descending, Part& out) {
  const int nqb = (Tq + KB - 1) / KB, nkb = (Tk + KB - 1) / KB, nqt = (Tq + TL - 1) / TL;
  // State of every 16 x 16 sub-block: 0 skip, 1 element mask, 2 fully visible.
  std::vector<uint8_t> st((size_t)nqb * nkb, 0);
  for (int qb = 0; qb < nqb; qb++) {
    const int q0 = q_offset + qb * KB, q1 = q_offset + std::min(Tq, (qb + 1) * KB) - 1;
    const bool qpart = (qb + 1) * KB > Tq;
    int kb_lo = 0;
    if (pat.kind == LCX_ATTN_WINDOW) kb_lo = std::max(0, (q0 - pat.window + 1) / KB);
    if (si.present && si.runs_unique) kb_lo = std::max(kb_lo, si.doc_start[q0] / KB);
    const int kb_hi = std::min(nkb - 1, q1 / KB);
    for (int kb = kb_lo; kb <= kb_hi; kb++) {
      const int k0 = kb * KB, k1 = std::min(Tk, (kb + 1) * KB) - 1;
      const bool partial = qpart || (kb + 1) * KB > Tk;
      const int s = tile_state(pat, hl, q0, q1, k0, k1, partial, si);
      st[(size_t)qb * nkb + kb] = (uint8_t)s;
      out.pairs += s != 0;
    }
  }
  // Forward / dq: per query tile, the key blocks any of its 4 sub-blocks needs, 4 per tile.
  out.fwd_count.assign(nqt, 0);
  for (int qt = 0; qt < nqt; qt++) {
    int slot = 0, flags = 0, blk[4] = {-1, -1, -1, -1};
    auto flush = [&]() {
      if (slot == 0) return;
      out.fwd_blk.insert(out.fwd_blk.end(), blk, blk + 4);
      out.fwd_flags.push_back(flags);
      out.fwd_count[qt]++;
      out.tiles++;
      slot = 0;
      flags = 0;
      blk[0] = blk[1] = blk[2] = blk[3] = -1;
    };
    for (int kb = 0; kb < nkb; kb++) {
      int bits = 0, elem = 0;
      for (int qs = 0; qs < 4; qs++) {
        const int qb = qt * 4 + qs;
        if (qb >= nqb) break;
        const int s = st[(size_t)qb * nkb + kb];
        if (s) bits |= 1 << (qs * 4 + slot);
        if (s == 1) elem = kElem;
      }
      if (!bits) continue;
      blk[slot] = kb;
      flags |= bits | elem;
      if (++slot == 4) flush();
    }
    flush();
  }
  if (!backward) return;
  // dkv: every key block belongs to one group of 4 (its rows must be written even when no
  // query sees it). Neighbouring blocks see nearly the same queries (causal, window, local
  // sparse blocks, packed documents), so groups are runs of 4 consecutive blocks, which also
  // load as one contiguous tile. Blocks seen by far more queries than the median (the sparse
  // layout's global blocks) are taken out and grouped among themselves by length, so that one
  // does not drag three local blocks through every query. Groups are then ordered by work,
  // lightest first (the kernel launches the last group first: the last wave is short).
  // Run 6's log2-length buckets had boundaries off multiples of 4: 8 of 128 dense groups per
  // head mixed blocks such as {254, 255, 256, 0} (NOTES.md, run 6 prep).
  std::vector<int> len(nkb, 0);
  for (int qb = 0; qb < nqb; qb++)
    for (int kb = 0; kb < nkb; kb++) len[kb] += st[(size_t)qb * nkb + kb] != 0;
  std::vector<int> sorted_len = len;
  std::nth_element(sorted_len.begin(), sorted_len.begin() + nkb / 2, sorted_len.end());
  const int median = sorted_len[nkb / 2];
  std::vector<int> local, wide;
  for (int kb = 0; kb < nkb; kb++) (len[kb] > 4 * std::max(median, 4) ? wide : local).push_back(kb);
  std::stable_sort(wide.begin(), wide.end(), [&](int a, int b) { return len[a] < len[b]; });
  // One list, cut every 4: exactly ceil(nkb / 4) groups (the kernel's grid); at most one group
  // mixes the last local blocks with the shortest wide ones.
  std::vector<int> order = local;
  order.insert(order.end(), wide.begin(), wide.end());
  std::vector<std::array<int, 4>> groups;
  for (int i = 0; i < nkb; i += 4) {
    std::array<int, 4> g = {-1, -1, -1, -1};
    for (int j = 0; j < 4 && i + j < nkb; j++) g[j] = order[i + j];
    groups.push_back(g);
  }
  auto work = [&](const std::array<int, 4>& g) {
    int w = 0;
    for (int kb : g) w = std::max(w, kb >= 0 ? len[kb] : 0);
    return w;
  };
  std::stable_sort(groups.begin(), groups.end(),
                   [&](const std::array<int, 4>& a, const std::array<int, 4>& b) { return work(a) < work(b); });
  const int ngroups = (int)groups.size();
  out.bwd_count.assign(ngroups, 0);
  std::vector<int> blks, flgs;  // one group's entries, ascending
  for (int gi = 0; gi < ngroups; gi++) {
    int kbs[4];
    const int cnt = (int)(std::find(groups[gi].begin(), groups[gi].end(), -1) - groups[gi].begin());
    for (int i = 0; i < 4; i++) kbs[i] = groups[gi][i];
    for (int i = 1; i < cnt; i++)  // ascending (insertion sort of <= 4)
      for (int j = i; j > 0 && kbs[j - 1] > kbs[j]; j--) std::swap(kbs[j - 1], kbs[j]);
    out.grp_blk.insert(out.grp_blk.end(), kbs, kbs + 4);
    blks.clear();
    flgs.clear();
    int slot = 0, flags = 0, blk[4] = {-1, -1, -1, -1};
    auto flush = [&]() {
      if (slot == 0) return;
      blks.insert(blks.end(), blk, blk + 4);
      flgs.push_back(flags);
      slot = 0;
      flags = 0;
      blk[0] = blk[1] = blk[2] = blk[3] = -1;
    };
    for (int qb = 0; qb < nqb; qb++) {
      int bits = 0, elem = 0;
      for (int ks = 0; ks < 4; ks++) {
        if (kbs[ks] < 0) continue;
        const int s = st[(size_t)qb * nkb + kbs[ks]];
        if (s) bits |= 1 << (ks * 4 + slot);
        if (s == 1) elem = kElem;
      }
      if (!bits) continue;
      blk[slot] = qb;
      flags |= bits | elem;
      if (++slot == 4) flush();
    }
    flush();
    // Top-down (attention.hpp): the entries in reverse, each one's blocks still ascending.
    const int n = (int)flgs.size();
    for (int k = 0; k < n; k++) {
      const int e = descending ? n - 1 - k : k;
      out.bwd_blk.insert(out.bwd_blk.end(), blks.begin() + 4 * e, blks.begin() + 4 * e + 4);
      out.bwd_flags.push_back(flgs[e]);
    }
    out.bwd_count[gi] = n;
  }
}

uint64_t fingerprint(const AttnPattern& pat, int B, int Tq, int Tk, int q_offset,
                     const int32_t* seg, bool backward, bool descending) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    h ^= v;
    h *= 1099511628211ull;
  };
  for (uint64_t v : {(uint64_t)pat.kind, (uint64_t)pat.window, (uint64_t)(uintptr_t)pat.layout_host,
                     (uint64_t)pat.nb, (uint64_t)pat.block, (uint64_t)pat.layout_heads, (uint64_t)B,
                     (uint64_t)Tq, (uint64_t)Tk, (uint64_t)q_offset, (uint64_t)backward,
                     (uint64_t)(seg != nullptr), (uint64_t)descending})
    mix(v);
  if (seg)
    for (size_t i = 0; i < (size_t)B * Tk; i++) mix((uint32_t)seg[i]);
  return h;
}

}  // namespace

int attn_env_digit(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && v[0] >= '0' && v[0] <= '9' ? v[0] - '0' : fallback;
}

bool build_attn_plan(AttnPlan& plan, const AttnPattern& pat, int B, int Tq, int Tk, int q_offset,
                     const int32_t* seg_host, bool with_backward) {
  if (pat.kind == LCX_ATTN_SPARSE && (pat.nb * pat.block < q_offset + Tq || !pat.layout_host))
    fail(LCX_ERR_ARG, "sparse attention: %d tokens exceed the layout built for %d positions",
         q_offset + Tq, pat.nb * pat.block);
  if (pat.kind == LCX_ATTN_WINDOW && pat.window < 1)
    fail(LCX_ERR_ARG, "sliding-window attention needs window >= 1, got %d", pat.window);
  const bool descending = dkv_descending();
  const uint64_t key = fingerprint(pat, B, Tq, Tk, q_offset, seg_host, with_backward, descending);
  if (key == plan.key && plan.B == B) return false;
  const int LH = pat.kind == LCX_ATTN_SPARSE ? pat.layout_heads : 1;
  plan.B = B;
  plan.Tq = Tq;
  plan.Tk = Tk;
  plan.q_offset = q_offset;
  plan.layout_heads = LH;
  plan.has_backward = with_backward;
  plan.nqt = (Tq + TL - 1) / TL;
  plan.nkb = (Tk + KB - 1) / KB;
  plan.ngroups = (plan.nkb + 3) / 4;
  std::vector<Part> parts((size_t)B * LH);
  std::vector<SegInfo> segs(B);
  for (int b = 0; b < B; b++) segs[b] = seg_info(seg_host ? seg_host + (size_t)b * Tk : nullptr, Tk);
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < B * LH; i++)
    build_part(pat, i % LH, segs[i / LH], Tq, Tk, q_offset, with_backward, descending, parts[i]);
  for (auto& v : plan.h) v.clear();
  plan.visited_tiles = plan.visited_pairs = 0;
  auto& fo = plan.h[kFwdOff];
  auto& bo = plan.h[kBwdOff];
  fo.push_back(0);
  bo.push_back(0);
  for (const Part& p : parts) {
    for (int c : p.fwd_count) fo.push_back(fo.back() + c);
    plan.h[kFwdBlk].insert(plan.h[kFwdBlk].end(), p.fwd_blk.begin(), p.fwd_blk.end());
    plan.h[kFwdFlags].insert(plan.h[kFwdFlags].end(), p.fwd_flags.begin(), p.fwd_flags.end());
    for (int c : p.bwd_count) bo.push_back(bo.back() + c);
    plan.h[kGrpBlk].insert(plan.h[kGrpBlk].end(), p.grp_blk.begin(), p.grp_blk.end());
    plan.h[kBwdBlk].insert(plan.h[kBwdBlk].end(), p.bwd_blk.begin(), p.bwd_blk.end());
    plan.h[kBwdFlags].insert(plan.h[kBwdFlags].end(), p.bwd_flags.begin(), p.bwd_flags.end());
    plan.visited_tiles += p.tiles;
    plan.visited_pairs += p.pairs;
  }
  for (auto& v : plan.h)
    if (v.empty()) v.assign(4, -1);  // device buffers are never empty
  plan.key = key;
  return true;
}

}  // namespace lcx::cuda
