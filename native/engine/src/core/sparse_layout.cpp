// DeepSpeed FixedSparsityConfig ("Generative Modeling with Sparse Transformers", customised by
// DeepSpeed), rebuilt in C++ so that models trained with DeepSpeed sparse attention (ruGPT3XL)
// see exactly the block pattern they were trained with.
//
// The layout is DeepSpeed's make_layout(n_positions): per head, a local pattern (blocks attend
// inside their window of num_local_blocks blocks) plus a global pattern (the "representative"
// blocks of every window are visible to all later rows, and with horizontal attention also see
// every column). Which blocks of a window are representative depends on the head when
// num_different_global_patterns > 1: first = num_local_blocks - (1 + h % patterns) * global.
//
// Two deliberate extensions, both no-ops for configs DeepSpeed accepts:
// - n_positions need not be a multiple of block: nb = ceil(n_positions / block), as if the
//   sequence were padded to whole blocks (DeepSpeed's sparse attention pads its input).
// - Python slice semantics are reproduced (negative starts count from the end) so that odd
//   corners such as nb < num_global_blocks give DeepSpeed's answer instead of a crash.
#include <algorithm>
#include <cstring>

#include "config.hpp"
#include "error.hpp"

namespace lcx {

namespace {

// Python's normalisation of a slice [start:stop] over a dimension of n: negative indices count
// from the end, everything is clamped to [0, n].
void py_slice(long start, long stop, long n, long* lo, long* hi) {
  auto norm = [n](long i) {
    if (i < 0) i += n;
    return std::clamp(i, 0L, n);
  };
  *lo = norm(start);
  *hi = std::max(*lo, norm(stop));
}

struct LayoutBuilder {
  const lcx_sparse_config& sc;
  long nb;
  uint8_t* head;  // nb * nb bytes of the head being built

  void set(long row_lo, long row_hi, long col_lo, long col_hi) {
    long r0, r1, c0, c1;
    py_slice(row_lo, row_hi, nb, &r0, &r1);
    py_slice(col_lo, col_hi, nb, &c0, &c1);
    for (long r = r0; r < r1; r++)
      for (long c = c0; c < c1; c++) head[r * nb + c] = 1;
  }

  // set_local_layout: square windows of num_local_blocks blocks along the diagonal (the last
  // one may be shorter); lower triangle only when unidirectional.
  void local() {
    const long w = sc.num_local_blocks;
    for (long i = 0; i < nb; i += w) {
      const long end = std::min(i + w, nb);
      for (long row = i; row < end; row++) {
        const long col_end = sc.unidirectional ? row + 1 : end;
        for (long col = i; col < col_end; col++) head[row * nb + col] = 1;
      }
    }
  }

  // set_global_layout for head h.
  void global(int h) {
    const long w = sc.num_local_blocks, g = sc.num_global_blocks;
    const long first = w - (1 + h % sc.num_different_global_patterns) * g;
    const long full_end = nb - nb % w;  // windows that are complete
    const bool bidirectional = !sc.unidirectional;
    for (long i = first; i < full_end; i += w) {
      // Vertical: every row from i down (all rows when bidirectional) sees columns i..i+g.
      set(bidirectional ? 0 : i, nb, i, i + g);
      if (sc.horizontal_global_attention) set(i, i + g, 0, nb);
    }
    if (full_end < nb) {
      // A short last window: its representatives are shifted left so that they stay inside
      // the layout.
      const long start = std::min(full_end + first, nb - g);
      const long end = start + g;
      set(bidirectional ? 0 : start, nb, start, end);
      if (sc.horizontal_global_attention) set(start, end, 0, nb);
    }
  }
};

void validate_sparse(const lcx_sparse_config& sc, int n_head, int n_positions) {
  if (n_head <= 0) fail(LCX_ERR_ARG, "sparse attention: n_head must be positive, got %d", n_head);
  if (n_positions <= 0)
    fail(LCX_ERR_ARG, "sparse attention: n_positions must be positive, got %d", n_positions);
  if (sc.block <= 0) fail(LCX_ERR_ARG, "sparse.block must be positive, got %d", sc.block);
  if (sc.num_local_blocks <= 0)
    fail(LCX_ERR_ARG, "sparse.num_local_blocks must be positive, got %d", sc.num_local_blocks);
  if (sc.num_global_blocks <= 0)
    fail(LCX_ERR_ARG, "sparse.num_global_blocks must be positive, got %d", sc.num_global_blocks);
  if (sc.num_local_blocks % sc.num_global_blocks != 0)
    fail(LCX_ERR_ARG,
         "sparse.num_local_blocks (%d) must be divisible by sparse.num_global_blocks (%d), as in "
         "DeepSpeed FixedSparsityConfig",
         sc.num_local_blocks, sc.num_global_blocks);
  if (sc.horizontal_global_attention && sc.unidirectional)
    fail(LCX_ERR_ARG,
         "sparse.horizontal_global_attention is only supported with bidirectional attention "
         "(sparse.unidirectional = 0)");
  if (sc.num_different_global_patterns < 1)
    fail(LCX_ERR_ARG, "sparse.num_different_global_patterns must be at least 1, got %d",
         sc.num_different_global_patterns);
  if (sc.num_different_global_patterns > 1 && !sc.different_layout_per_head)
    fail(LCX_ERR_ARG,
         "sparse.num_different_global_patterns = %d needs sparse.different_layout_per_head = 1 "
         "(with one layout for all heads there can be only one global pattern)",
         sc.num_different_global_patterns);
  const int max_patterns = sc.num_local_blocks / sc.num_global_blocks;
  if (sc.num_different_global_patterns > max_patterns)
    fail(LCX_ERR_ARG,
         "sparse.num_different_global_patterns (%d) cannot exceed num_local_blocks / "
         "num_global_blocks = %d / %d = %d",
         sc.num_different_global_patterns, sc.num_local_blocks, sc.num_global_blocks,
         max_patterns);
}

}  // namespace

std::vector<uint8_t> fixed_sparse_layout(const lcx_sparse_config& sc, int n_head,
                                         int n_positions) {
  validate_sparse(sc, n_head, n_positions);
  const long nb = (n_positions + sc.block - 1) / sc.block;
  const size_t head_bytes = (size_t)nb * nb;
  std::vector<uint8_t> layout((size_t)n_head * head_bytes, 0);

  // DeepSpeed builds only head 0 when heads share a layout, then copies it to the others
  // (check_and_propagate_first_head_layout).
  const int built_heads = sc.different_layout_per_head ? n_head : 1;
  for (int h = 0; h < built_heads; h++) {
    LayoutBuilder b{sc, nb, layout.data() + h * head_bytes};
    b.local();
    b.global(h);
  }
  for (int h = built_heads; h < n_head; h++)
    std::memcpy(layout.data() + h * head_bytes, layout.data(), head_bytes);
  return layout;
}

}  // namespace lcx
