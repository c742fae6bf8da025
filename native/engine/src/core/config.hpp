// Config helpers shared by every part of the engine.
#pragma once
#include <vector>

#include "longctx.h"

namespace lcx {

// Throws LCX_ERR_ARG / LCX_ERR_UNSUPPORTED with a message naming the bad field.
void validate_config(const lcx_config& cfg);

lcx_param_layout param_layout(const lcx_config& cfg);

// Tensors that get weight decay (2-D: wte, wpe and the matrices).
bool param_decays(int tensor_index);

// DeepSpeed FixedSparsityConfig block layout ("master layout", make_layout(n_positions)):
// returns NH * nb * nb bytes (nb = ceil(n_positions / block)), layout[h][row][col] = 1 where
// query block row may attend key block col. Heads share one layout unless
// different_layout_per_head. Like DeepSpeed's SparseSelfAttention.get_layout, a sequence of
// T <= n_positions tokens uses the top-left corner, so the layout is built once per config and
// rebuilt when extendPositions changes n_positions.
std::vector<uint8_t> fixed_sparse_layout(const lcx_sparse_config& sc, int n_head, int n_positions);

// The reference attention predicate every backend must match: may query position q attend key
// position k (same row), for head h of a layer of the given kind? layout/nb are from
// fixed_sparse_layout (only read for LCX_ATTN_SPARSE). Segments: same id required.
inline bool attends(int kind, int window, const uint8_t* layout, int nb, int block, int h,
                    int q, int k, const int32_t* seg_row) {
  if (k > q) return false;
  if (seg_row && seg_row[k] != seg_row[q]) return false;
  if (kind == LCX_ATTN_WINDOW) return q - k < window;
  if (kind == LCX_ATTN_SPARSE)
    return layout[((size_t)h * nb + q / block) * nb + k / block] != 0;
  return true;
}

// Position of token t of a row: restarts at 0 at each document start when segments are given.
void positions_for_row(const int32_t* seg_row, int T, int32_t* pos_out);

}  // namespace lcx
