// fixed_sparse_layout() against DeepSpeed FixedSparsityConfig.make_layout, on small cases
// worked out by hand from DeepSpeed's rules (sparsity_config.py):
//   local:  windows of num_local_blocks blocks on the diagonal (last one may be short), lower
//           triangle when unidirectional, full square when bidirectional;
//   global: first = num_local_blocks - (1 + h % num_different_global_patterns) * global;
//           for each complete window starting at w0, columns w0+first .. +global are seen by
//           rows >= that column (unidirectional) or by all rows (bidirectional), and, with
//           horizontal_global_attention, those rows see every column;
//           a short last window uses start = min(end + first, nb - global);
//   heads share head 0's layout unless different_layout_per_head.
// Each expected matrix below is written row by row: row = query block, column = key block.
#include <string>
#include <vector>

#include "core/config.hpp"
#include "testing.hpp"

namespace {

lcx_sparse_config sparse(int local, int global, int different, int patterns, int uni,
                         int horizontal = 0, int block = 16) {
  lcx_sparse_config s{};
  s.block = block;
  s.num_local_blocks = local;
  s.num_global_blocks = global;
  s.different_layout_per_head = different;
  s.num_different_global_patterns = patterns;
  s.unidirectional = uni;
  s.horizontal_global_attention = horizontal;
  return s;
}

// Compares head h of a layout with rows of '0'/'1' characters; prints the whole head on error.
void expect_head(const std::vector<uint8_t>& layout, int h, const std::vector<std::string>& rows,
                 const char* file, int line) {
  const size_t nb = rows.size();
  if (layout.size() < (h + 1) * nb * nb) {
    testing::fail_check(file, line, "layout is smaller than expected");
    return;
  }
  std::string got, want;
  for (size_t r = 0; r < nb; r++) {
    for (size_t c = 0; c < nb; c++) got += layout[(h * nb + r) * nb + c] ? '1' : '0';
    want += rows[r];
    got += '\n';
    want += '\n';
  }
  if (got != want)
    testing::fail_check(file, line,
                        "head " + std::to_string(h) + " differs\nexpected:\n" + want + "got:\n" + got);
}
#define EXPECT_HEAD(layout, h, ...) expect_head(layout, h, __VA_ARGS__, __FILE__, __LINE__)

}  // namespace

// nb = 8, 4 local blocks, 1 global block, causal, one global pattern per head: the global
// column of each window moves from its last block (head 0) to its first (head 3).
TEST(unidirectional_four_patterns_per_head) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 1, 1, 4, 1), 4, 8 * 16);
  CHECK_EQ(L.size(), (size_t)4 * 8 * 8);
  EXPECT_HEAD(L, 0, {"10000000",
                     "11000000",
                     "11100000",
                     "11110000",
                     "00011000",
                     "00011100",
                     "00011110",
                     "00011111"});
  EXPECT_HEAD(L, 1, {"10000000",
                     "11000000",
                     "11100000",
                     "11110000",
                     "00101000",
                     "00101100",
                     "00101110",
                     "00101111"});
  EXPECT_HEAD(L, 2, {"10000000",
                     "11000000",
                     "11100000",
                     "11110000",
                     "01001000",
                     "01001100",
                     "01001110",
                     "01001111"});
  EXPECT_HEAD(L, 3, {"10000000",
                     "11000000",
                     "11100000",
                     "11110000",
                     "10001000",
                     "10001100",
                     "10001110",
                     "10001111"});
}

// Heads beyond num_different_global_patterns cycle through the patterns (h % patterns).
TEST(patterns_cycle_over_heads) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 1, 1, 2, 1), 5, 8 * 16);
  const size_t hb = 64;
  for (int h = 2; h < 5; h++)
    CHECK(std::equal(L.begin() + h * hb, L.begin() + (h + 1) * hb, L.begin() + (h % 2) * hb));
  CHECK(!std::equal(L.begin(), L.begin() + hb, L.begin() + hb));  // heads 0 and 1 differ
}

// One layout for all heads (check_and_propagate_first_head_layout): every head is head 0.
TEST(shared_layout_propagates_head_zero) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 1, 0, 1, 1), 3, 8 * 16);
  for (int h = 0; h < 3; h++)
    EXPECT_HEAD(L, h, {"10000000",
                       "11000000",
                       "11100000",
                       "11110000",
                       "00011000",
                       "00011100",
                       "00011110",
                       "00011111"});
}

// nb = 7 with windows of 4: the last window (blocks 4..6) is short. Two global blocks, first =
// 4 - 2 = 2: the complete window gets columns 2,3 (rows >= 2, so row 2 also sees block 3);
// the short one would get 6,7 but is moved left to start = min(4 + 2, 7 - 2) = 5: columns 5,6.
TEST(short_last_window_two_global_blocks) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 2, 0, 1, 1), 1, 7 * 16);
  EXPECT_HEAD(L, 0, {"1000000",
                     "1100000",
                     "1111000",
                     "1111000",
                     "0011100",
                     "0011111",
                     "0011111"});
  // n_positions that is not a multiple of block rounds up to whole blocks: same layout.
  const auto R = lcx::fixed_sparse_layout(sparse(4, 2, 0, 1, 1, 0, 16), 1, 6 * 16 + 5);
  CHECK(R == L);
}

// nb = 6, causal, patterns per head: head 0 (first = 3) and head 1 (first = 2); in the short
// last window both land on start = min(4 + first, 5) = 5, already on the diagonal.
TEST(short_last_window_per_head) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 1, 1, 2, 1), 2, 6 * 16);
  EXPECT_HEAD(L, 0, {"100000",
                     "110000",
                     "111000",
                     "111100",
                     "000110",
                     "000111"});
  EXPECT_HEAD(L, 1, {"100000",
                     "110000",
                     "111000",
                     "111100",
                     "001010",
                     "001011"});
}

// Bidirectional: full local squares, global columns seen by every row; short last window.
TEST(bidirectional_short_window) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 1, 0, 1, 0), 1, 6 * 16);
  EXPECT_HEAD(L, 0, {"111101",
                     "111101",
                     "111101",
                     "111101",
                     "000111",
                     "000111"});
}

// Bidirectional with horizontal global attention: the global blocks' rows see everything.
TEST(bidirectional_horizontal) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 1, 0, 1, 0, 1), 1, 8 * 16);
  EXPECT_HEAD(L, 0, {"11110001",
                     "11110001",
                     "11110001",
                     "11111111",
                     "00011111",
                     "00011111",
                     "00011111",
                     "11111111"});
}

// Fewer blocks than global blocks: DeepSpeed's slices start at -1 (Python: from the end); the
// result is the single diagonal block, not a crash.
TEST(fewer_blocks_than_global_blocks) {
  const auto L = lcx::fixed_sparse_layout(sparse(4, 2, 0, 1, 1), 2, 16);
  CHECK_EQ(L.size(), (size_t)2);
  CHECK_EQ((int)L[0], 1);
  CHECK_EQ((int)L[1], 1);
}

// ruGPT3XL-sized layout (2048 positions, block 16, 8 local, 1 global): every query block sees
// its own block, a causal layout with one global block has nothing above the diagonal, and a
// row holds at most its local window plus one global column per earlier window.
TEST(rugpt3xl_shape_properties) {
  const int nb = 2048 / 16;
  const auto L = lcx::fixed_sparse_layout(sparse(8, 1, 0, 1, 1), 2, 2048);
  CHECK_EQ(L.size(), (size_t)2 * nb * nb);
  for (int r = 0; r < nb; r++) {
    int count = 0;
    for (int c = 0; c < nb; c++) count += L[(size_t)r * nb + c];
    CHECK(L[(size_t)r * nb + r] == 1);
    CHECK(count <= 8 + nb / 8);
    for (int c = r + 1; c < nb; c++) CHECK(L[(size_t)r * nb + c] == 0);
  }
}

TEST(validation_errors) {
  using lcx::fixed_sparse_layout;
  CHECK_THROWS(LCX_ERR_ARG, "divisible by sparse.num_global_blocks",
               fixed_sparse_layout(sparse(4, 3, 0, 1, 1), 1, 128));
  CHECK_THROWS(LCX_ERR_ARG, "only supported with bidirectional",
               fixed_sparse_layout(sparse(4, 1, 0, 1, 1, 1), 1, 128));
  CHECK_THROWS(LCX_ERR_ARG, "needs sparse.different_layout_per_head",
               fixed_sparse_layout(sparse(4, 1, 0, 2, 1), 1, 128));
  CHECK_THROWS(LCX_ERR_ARG, "cannot exceed num_local_blocks / num_global_blocks",
               fixed_sparse_layout(sparse(4, 2, 1, 3, 1), 4, 128));
  CHECK_THROWS(LCX_ERR_ARG, "at least 1", fixed_sparse_layout(sparse(4, 1, 1, 0, 1), 1, 128));
  CHECK_THROWS(LCX_ERR_ARG, "sparse.block", fixed_sparse_layout(sparse(4, 1, 0, 1, 1, 0, 0), 1, 128));
  CHECK_THROWS(LCX_ERR_ARG, "num_local_blocks must be positive",
               fixed_sparse_layout(sparse(0, 1, 0, 1, 1), 1, 128));
  CHECK_THROWS(LCX_ERR_ARG, "num_global_blocks must be positive",
               fixed_sparse_layout(sparse(4, 0, 0, 1, 1), 1, 128));
  CHECK_THROWS(LCX_ERR_ARG, "n_positions", fixed_sparse_layout(sparse(4, 1, 0, 1, 1), 1, 0));
  // The largest allowed number of patterns is accepted.
  CHECK(fixed_sparse_layout(sparse(4, 2, 1, 2, 1), 4, 128).size() == (size_t)4 * 8 * 8);
}

int main() { return testing::run_all(); }
