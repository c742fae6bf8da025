// The one place that decides whether an lcx_config describes a model the engine can build.
// Sparse settings follow DeepSpeed FixedSparsityConfig's own checks, so a config accepted here
// is one DeepSpeed would accept too.
#include <cmath>
#include <cstdint>

#include "config.hpp"
#include "error.hpp"

namespace lcx {

void validate_config(const lcx_config& c) {
  if (c.arch != LCX_ARCH_GPT2 && c.arch != LCX_ARCH_RUGPT3XL)
    fail(LCX_ERR_UNSUPPORTED, "config.arch = %d is not a known architecture (0 = GPT-2, 1 = ruGPT3XL)",
         c.arch);
  if (c.vocab_size <= 0) fail(LCX_ERR_ARG, "config.vocab_size = %d must be > 0", c.vocab_size);
  if (c.n_positions <= 0) fail(LCX_ERR_ARG, "config.n_positions = %d must be > 0", c.n_positions);
  if (c.n_embd <= 0) fail(LCX_ERR_ARG, "config.n_embd = %d must be > 0", c.n_embd);
  if (c.n_head <= 0) fail(LCX_ERR_ARG, "config.n_head = %d must be > 0", c.n_head);
  if (c.n_embd % c.n_head != 0)
    fail(LCX_ERR_ARG, "config.n_embd = %d must be divisible by config.n_head = %d", c.n_embd,
         c.n_head);
  if (c.n_inner <= 0) fail(LCX_ERR_ARG, "config.n_inner = %d must be > 0", c.n_inner);
  if (c.n_layer <= 0) fail(LCX_ERR_ARG, "config.n_layer = %d must be > 0", c.n_layer);
  if (c.n_layer > LCX_MAX_LAYERS)
    fail(LCX_ERR_UNSUPPORTED, "config.n_layer = %d: at most %d layers are supported", c.n_layer,
         LCX_MAX_LAYERS);
  if (!(c.layer_norm_eps > 0.0f) || !std::isfinite(c.layer_norm_eps))
    fail(LCX_ERR_ARG, "config.layer_norm_eps = %g must be a positive number", (double)c.layer_norm_eps);

  // Element counts of the largest tensors must fit comfortably in 63 bits of bytes.
  const double largest = std::fmax(std::fmax((double)c.vocab_size, (double)c.n_positions) * c.n_embd,
                                   (double)c.n_layer * c.n_embd * std::fmax(3.0 * c.n_embd, c.n_inner));
  if (largest * 4 > 9.0e18)
    fail(LCX_ERR_UNSUPPORTED, "config describes tensors too large to address (%.3g elements)", largest);

  bool any_sparse = false;
  for (int l = 0; l < c.n_layer; l++) {
    const int kind = c.attn_kind[l];
    if (kind != LCX_ATTN_DENSE && kind != LCX_ATTN_WINDOW && kind != LCX_ATTN_SPARSE)
      fail(LCX_ERR_ARG, "config.attn_kind[%d] = %d is not an attention kind (0 dense, 1 window, 2 sparse)",
           l, kind);
    if (kind == LCX_ATTN_WINDOW && c.attn_window[l] <= 0)
      fail(LCX_ERR_ARG, "config.attn_window[%d] = %d must be > 0 for a window layer", l,
           c.attn_window[l]);
    any_sparse |= kind == LCX_ATTN_SPARSE;
  }
  if (!any_sparse) return;

  const lcx_sparse_config& s = c.sparse;
  if (s.block <= 0) fail(LCX_ERR_ARG, "config.sparse.block = %d must be > 0", s.block);
  if (s.num_local_blocks <= 0)
    fail(LCX_ERR_ARG, "config.sparse.num_local_blocks = %d must be > 0", s.num_local_blocks);
  if (s.num_global_blocks <= 0)
    fail(LCX_ERR_ARG, "config.sparse.num_global_blocks = %d must be > 0", s.num_global_blocks);
  if (s.num_local_blocks % s.num_global_blocks != 0)
    fail(LCX_ERR_ARG,
         "config.sparse.num_local_blocks = %d must be divisible by num_global_blocks = %d",
         s.num_local_blocks, s.num_global_blocks);
  if (s.num_different_global_patterns < 1)
    fail(LCX_ERR_ARG, "config.sparse.num_different_global_patterns = %d must be >= 1",
         s.num_different_global_patterns);
  if (s.num_different_global_patterns > 1 && !s.different_layout_per_head)
    fail(LCX_ERR_ARG,
         "config.sparse.num_different_global_patterns = %d needs different_layout_per_head = 1",
         s.num_different_global_patterns);
  if (s.num_different_global_patterns > s.num_local_blocks / s.num_global_blocks)
    fail(LCX_ERR_ARG,
         "config.sparse.num_different_global_patterns = %d must be <= num_local_blocks / "
         "num_global_blocks = %d",
         s.num_different_global_patterns, s.num_local_blocks / s.num_global_blocks);
  if (s.horizontal_global_attention && s.unidirectional)
    fail(LCX_ERR_ARG,
         "config.sparse.horizontal_global_attention is only allowed with bidirectional attention "
         "(unidirectional = 0)");
}

}  // namespace lcx
