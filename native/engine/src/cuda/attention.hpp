// FlashAttention-2-style attention for the CUDA backend: forward (saving the log-sum-exp) and
// backward, bf16 in / fp32 accumulate, head dims 32/64/96/128, per-token segment ids, and the
// three patterns of the engine (dense causal, sliding window, fixed block-sparse).
//
// Work is organised in 64 x 64 tiles (queries x keys). A host-built plan (AttnPlan) lists, per
// query tile, only the key tiles the pattern can reach, each flagged "needs an element mask" or
// "fully visible"; the backward pass also gets the transposed lists (per key tile, the query
// tiles). Tiles the pattern masks out entirely are never loaded or computed, so window and
// sparse layers cost what they attend to, and packed documents skip each other's tiles.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace lcx::cuda {

using bf16 = __nv_bfloat16;
constexpr int kAttnTile = 64;
constexpr int kAttnBlock = 16;

// The attention pattern of one layer, as the kernels see it.
struct AttnPattern {
  int kind = 0;                     // lcx_attn_kind
  int window = 0;                   // LCX_ATTN_WINDOW
  const uint8_t* layout_host = nullptr;  // fixed_sparse_layout (LCX_ATTN_SPARSE), NH or 1 heads
  const uint8_t* layout_dev = nullptr;
  int nb = 0, block = 0, layout_heads = 1;
};

// The plan for one (pattern, batch) pair. Work is split in 16 x 16 sub-blocks (kAttnBlock);
// key (or query) blocks that a 64-row tile may need are gathered four at a time into 64-row
// "virtual tiles", so that a pattern's holes are skipped at 16-token granularity while every
// product still runs on full 64-wide tiles.
//
// Forward / dq (per query tile qt, 64 contiguous query rows = 4 sub-blocks, one per warp):
//   entries [off[li], off[li+1]) with li = (b * layout_heads + lh) * nqt + qt; entry e has
//   blk[4e..4e+3] = the 4 key blocks (-1 = empty slot) and flags[e]:
//     bits 0..15: bit (qs * 4 + slot) = query sub-block qs may see key block `slot`
//     bit 16: apply the element predicate (causal diagonal, segments, window or layout edges)
// dkv (per group of 4 key blocks, one per warp; groups of blocks with similar query lists):
//   groups g of (b, lh): gblk[4 * gi .. +3] key blocks, entries [boff[gi], boff[gi+1]) with
//   bblk (4 query blocks) and bflags: bit (ks * 4 + qs), bit 16 as above. A group's entries run
//   from its last query tile down, so that the groups of a head, which all reach the sequence's
//   end, read the same query tiles at about the same time (the sparse layout's long global
//   groups then share them in L2; NOTES.md, run 14).
enum AttnPlanArray { kFwdOff = 0, kFwdBlk, kFwdFlags, kGrpBlk, kBwdOff, kBwdBlk, kBwdFlags, kPlanArrays };

struct AttnPlan {
  int B = 0, Tq = 0, Tk = 0, q_offset = 0, layout_heads = 1;
  int nqt = 0, nkb = 0, ngroups = 0;
  bool has_backward = false;
  std::vector<int> h[kPlanArrays];  // host copies
  const int* d[kPlanArrays] = {};   // device copies (owned by the caller)
  long long visited_tiles = 0;      // forward virtual tiles
  long long visited_pairs = 0;      // 16 x 16 sub-blocks that are computed (cost report)
  uint64_t key = 0;                 // inputs fingerprint: rebuild only when it changes
};

// Builds the host lists. seg (B, Tk) or nullptr. Query i of the plan sits at absolute position
// q_offset + i; keys are positions 0..Tk-1 (prefill against a KV cache uses q_offset > 0).
// Returns false (plan untouched) when the inputs match plan.key, i.e. nothing to rebuild/upload.
bool build_attn_plan(AttnPlan& plan, const AttnPattern& pat, int B, int Tq, int Tk, int q_offset,
                     const int32_t* seg_host, bool with_backward);

struct AttnArgs {
  int B = 0, NH = 0, HS = 0, Tq = 0, Tk = 0, q_offset = 0;
  const bf16 *q = nullptr, *k = nullptr, *v = nullptr;  // head 0 of batch row 0
  long long q_row = 0, kv_row = 0, q_batch = 0, kv_batch = 0;  // element strides
  bf16* o = nullptr;
  long long o_row = 0, o_batch = 0;
  float* lse = nullptr;                 // (B, NH, Tq), log2 domain
  const int32_t* seg = nullptr;         // (B, Tk) device, or nullptr
  long long seg_batch = 0;
  // backward
  const bf16* dout = nullptr;           // same strides as o
  float* dvec = nullptr;                // (B, NH, Tq) scratch: rowsum(dO * O)
  bf16 *dq = nullptr, *dk = nullptr, *dv = nullptr;
  long long dq_row = 0, dkv_row = 0, dq_batch = 0, dkv_batch = 0;
};

bool attention_head_dim_supported(int hs);
// The attention code's A/B switches (LCX_ATTN_*, NOTES.md): the variable's first character as a
// digit, or fallback when it is unset or not a digit. Each caller reads its switch once.
int attn_env_digit(const char* name, int fallback);
// On Hopper (sm_90) the forward and backward run wgmma kernels at head dims 64 and 128 when the
// build has them (attention_sm90a.cu); LCX_ATTN_WGMMA=0 at start, or attention_set_wgmma(false),
// keeps the mma.sync kernels (tests compare both). attention_wgmma_active: would they run here.
void attention_set_wgmma(bool on);
bool attention_wgmma_active(int hs);
void attention_forward(const AttnArgs& a, const AttnPattern& pat, const AttnPlan& plan,
                       cudaStream_t stream);
void attention_backward(const AttnArgs& a, const AttnPattern& pat, const AttnPlan& plan,
                        cudaStream_t stream);

// Decoding: one query (B = 1, Tq = 1, the query is the last key: q_offset = Tk - 1) against the
// KV cache, split over the keys into many CTAs and merged by log-sum-exp (attention_decode.cu).
// No plan: the pattern is tested per key. scratch holds attention_decode_scratch(NH, HS, Tk)
// floats; o and lse as in attention_forward.
size_t attention_decode_scratch(int NH, int HS, int Tk);
// dev_qpos != nullptr (CUDA-graph replay): the query position (= Tk - 1) is read on the device
// and a.Tk is the cache capacity (the grid is sized for it).
// merge_in_split: the last CTA of each head merges (no merge kernel). The last NH floats of the
// scratch (scratch_floats as given) then hold per-head arrival counters (int) that must be zero
// before the first call (cudaMemset at allocation); every call leaves them zero.
void attention_decode(const AttnArgs& a, const AttnPattern& pat, float* scratch, size_t scratch_floats,
                      cudaStream_t stream, const int* dev_qpos = nullptr, bool merge_in_split = false);
// K, V cache append: rows len.. len+m-1 of kc, vc (row stride C) = the K and V parts of m fused
// qkv rows (row stride 3C); the position is *dev_len when dev_len != nullptr.
void kv_append(bf16* kc, bf16* vc, const bf16* qkv, int m, int C, int len, const int* dev_len,
               cudaStream_t s);

// Brute-force fp32 reference on the GPU (tests only): one thread per (query, head), the
// reference predicate lcx::attends for every (query, key) pair. o/dq/dk/dv are fp32 (B,T,NH,HS)
// contiguous; q/k/v/dout bf16 with the strides of AttnArgs.
void attention_reference(const AttnArgs& a, const AttnPattern& pat, float* o, float* dq, float* dk,
                         float* dv, cudaStream_t stream);

}  // namespace lcx::cuda
