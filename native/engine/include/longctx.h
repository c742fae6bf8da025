/*
 * longctx.h — the whole public surface of the LongCtx engine.
 *
 * A GPT-2-family trainer and generator with a readable CPU backend and a fast CUDA backend
 * behind the same calls. Everything here is plain C so that the Node addon, C++ tests and
 * Python ctypes (on the GPU machine) can all drive it.
 *
 * Conventions
 * - Every call returns an lcx_status. On failure, lcx_last_error() holds a human message for
 *   the calling thread (which file, which tensor, what to do). The library never exits/aborts.
 * - Shapes use one vocabulary: B batch rows, T tokens per row, C = n_embd, V = vocab_size,
 *   L = n_layer, NH = n_head, HS = C / NH.
 * - Token ids are int32. segments (optional, B*T) are per-token document ids inside a packed
 *   row: a token attends only to earlier tokens of the same row with the same segment id.
 *   Positions restart at 0 at each document start when `segments` is given (see lcx_batch).
 * - targets (optional, B*T) are next-token ids; -1 means "not scored".
 * - Parameters have one canonical fp32 layout (lcx_param_layout) used by get/set calls, so the
 *   CPU and CUDA backends can be compared tensor by tensor.
 */
#ifndef LONGCTX_H
#define LONGCTX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LCX_API __declspec(dllexport)
#else
#define LCX_API __attribute__((visibility("default")))
#endif

#define LCX_MAX_LAYERS 256

typedef enum lcx_status {
  LCX_OK = 0,
  LCX_ERR_ARG = 1,          /* bad argument from the caller */
  LCX_ERR_IO = 2,           /* file missing / unreadable / unwritable, disk full */
  LCX_ERR_FORMAT = 3,       /* not a supported model: bad JSON, truncated safetensors, ... */
  LCX_ERR_SHAPE = 4,        /* tensor shape does not match config.json */
  LCX_ERR_DTYPE = 5,        /* tensor dtype not F32/F16/BF16 */
  LCX_ERR_UNSUPPORTED = 6,  /* unknown architecture or option */
  LCX_ERR_OOM = 7,          /* host or device out of memory (message has bytes asked/free) */
  LCX_ERR_BACKEND = 8,      /* backend not built in, or no device */
  LCX_ERR_NUMERIC = 9,      /* NaN/Inf in loss or gradients */
  LCX_ERR_INTERNAL = 10
} lcx_status;

typedef enum lcx_backend { LCX_BACKEND_CPU = 0, LCX_BACKEND_CUDA = 1 } lcx_backend;

typedef enum lcx_arch {
  LCX_ARCH_GPT2 = 0,     /* HF GPT2LMHeadModel: Conv1D [in,out], fused c_attn, tied lm_head */
  LCX_ARCH_RUGPT3XL = 1  /* HF RuGPT3XLForCausalLM port: split q/k/v, sparse_* config keys */
} lcx_arch;

typedef enum lcx_attn_kind {
  LCX_ATTN_DENSE = 0,   /* causal */
  LCX_ATTN_WINDOW = 1,  /* causal, key in (q - window, q] */
  LCX_ATTN_SPARSE = 2   /* causal AND DeepSpeed FixedSparsityConfig block layout */
} lcx_attn_kind;

/* DeepSpeed FixedSparsityConfig, same names and semantics. */
typedef struct lcx_sparse_config {
  int32_t block;                          /* tokens per block, e.g. 16 */
  int32_t num_local_blocks;               /* e.g. 4 or 8 */
  int32_t num_global_blocks;              /* e.g. 1 */
  int32_t different_layout_per_head;      /* bool */
  int32_t num_different_global_patterns;  /* 1 .. num_local_blocks/num_global_blocks */
  int32_t unidirectional;                 /* bool; 1 for causal LMs (ruGPT3XL) */
  int32_t horizontal_global_attention;    /* bool; only allowed when bidirectional */
} lcx_sparse_config;

typedef struct lcx_config {
  int32_t arch;            /* lcx_arch */
  int32_t vocab_size;      /* V */
  int32_t n_positions;     /* rows of wpe = longest context */
  int32_t n_embd;          /* C */
  int32_t n_layer;         /* L */
  int32_t n_head;          /* NH */
  int32_t n_inner;         /* MLP width, usually 4*C */
  float layer_norm_eps;    /* 1e-5 for GPT-2 */
  int32_t attn_kind[LCX_MAX_LAYERS];   /* lcx_attn_kind per layer */
  int32_t attn_window[LCX_MAX_LAYERS]; /* window size for LCX_ATTN_WINDOW layers */
  lcx_sparse_config sparse;            /* used by LCX_ATTN_SPARSE layers */
} lcx_config;

/* Canonical fp32 parameter order (llm.c style, weights stored [out, in] row-major):
 *   0 wte (V, C)        1 wpe (n_positions, C)
 *   2 ln1w (L, C)       3 ln1b (L, C)
 *   4 qkvw (L, 3C, C)   5 qkvb (L, 3C)      rows: q then k then v, heads contiguous in each
 *   6 attprojw (L, C, C) 7 attprojb (L, C)
 *   8 ln2w (L, C)       9 ln2b (L, C)
 *  10 fcw (L, n_inner, C) 11 fcb (L, n_inner)
 *  12 fcprojw (L, C, n_inner) 13 fcprojb (L, C)
 *  14 lnfw (C)         15 lnfb (C)
 * lm_head is tied to wte. */
#define LCX_NUM_PARAM_TENSORS 16
typedef struct lcx_param_layout {
  size_t offset[LCX_NUM_PARAM_TENSORS]; /* in floats */
  size_t count[LCX_NUM_PARAM_TENSORS];  /* in floats */
  size_t total;                         /* in floats */
} lcx_param_layout;

typedef struct lcx_model lcx_model;
typedef struct lcx_gen lcx_gen;

/* What lcx_inspect finds without loading the weights. */
typedef struct lcx_model_info {
  lcx_config config;
  int64_t parameters;        /* unique parameters (tied lm_head counted once) */
  int64_t bytes_on_disk;     /* sum of safetensors files */
  int32_t num_files;         /* safetensors shards */
  char dtype[8];             /* "F32" | "F16" | "BF16" | "mixed" */
  char architecture[64];     /* config.json "architectures"[0], or model_type */
} lcx_model_info;

/* ---- errors, build ---------------------------------------------------------------- */
LCX_API const char* lcx_last_error(void);     /* message of this thread's last failure */
LCX_API const char* lcx_status_name(lcx_status s);
LCX_API int32_t lcx_backends_available(void); /* bit (1<<lcx_backend) per compiled backend */
LCX_API lcx_status lcx_set_num_threads(int32_t n); /* CPU backend; 0 = all cores */
LCX_API int32_t lcx_get_num_threads(void);

/* ---- models ----------------------------------------------------------------------- */
/* Reads config.json + safetensors headers in dir, validates names/shapes/sizes, loads nothing. */
LCX_API lcx_status lcx_inspect(const char* dir, lcx_model_info* out);
LCX_API lcx_status lcx_model_load(const char* dir, int32_t backend, lcx_model** out);
/* A fresh model with GPT-2 initialisation (normal 0.02, residual projections scaled by
 * 1/sqrt(2L), LayerNorm 1/0), deterministic for a seed. */
LCX_API lcx_status lcx_model_create(const lcx_config* cfg, uint64_t seed, int32_t backend,
                                    lcx_model** out);
/* Writes model.safetensors (or shards above max_shard_bytes, 0 = one file) and config.json in
 * the model's own HF layout (arch), loadable by transformers. Tokenizer files are the caller's. */
LCX_API lcx_status lcx_model_save(lcx_model* m, const char* dir, int64_t max_shard_bytes);
LCX_API void lcx_model_free(lcx_model* m); /* NULL is fine */
LCX_API lcx_status lcx_model_config(const lcx_model* m, lcx_config* out);
LCX_API int32_t lcx_model_backend(const lcx_model* m);
LCX_API void lcx_param_layout_of(const lcx_config* cfg, lcx_param_layout* out);
LCX_API lcx_status lcx_get_params(lcx_model* m, float* out, size_t count);
LCX_API lcx_status lcx_set_params(lcx_model* m, const float* in, size_t count);
/* Change one layer's attention pattern (e.g. to try sliding-window layers). */
LCX_API lcx_status lcx_set_attention(lcx_model* m, int32_t layer, int32_t kind, int32_t window);

/* ---- context extension ------------------------------------------------------------ */
typedef enum lcx_extend_mode {
  LCX_EXTEND_TILE = 0,        /* rows < n_old unchanged; row p = row (p mod n_old) */
  LCX_EXTEND_INTERPOLATE = 1, /* linear position interpolation over the old rows */
  LCX_EXTEND_RANDOM = 2       /* rows < n_old unchanged; new rows ~ N(0, 0.02) */
} lcx_extend_mode;
/* Grows (or keeps) wpe to n_new rows; optimizer state is reset; sparse layouts follow T. */
LCX_API lcx_status lcx_extend_positions(lcx_model* m, int32_t n_new, int32_t mode, uint64_t seed);

/* ---- forward / training ----------------------------------------------------------- */
typedef struct lcx_batch {
  const int32_t* tokens;   /* (B, T) */
  const int32_t* targets;  /* (B, T) next-token ids, -1 = not scored; NULL = no loss */
  const int32_t* segments; /* (B, T) document ids or NULL (one document per row) */
  int32_t B, T;
} lcx_batch;

/* Inference forward. nll (B*T, may be NULL) gets per-token NLL (0 where target is -1);
 * logits (B*T*V, may be NULL) gets raw logits; loss (may be NULL) = mean NLL over scored. */
LCX_API lcx_status lcx_forward(lcx_model* m, const lcx_batch* b, float* nll, float* logits,
                               float* loss);

typedef struct lcx_train_config {
  float beta1, beta2, eps, weight_decay; /* AdamW, decoupled decay on 2-D tensors only
                                            (wte, wpe, matrices); biases and LayerNorm exempt */
  float grad_clip;                       /* global-norm clip, <= 0 = off */
  int32_t recompute;                     /* activation recompute per layer (CUDA) */
  int32_t master_dtype;                  /* 0 = fp32 master weights, 1 = bf16 + stochastic rounding */
  uint64_t seed;                         /* stochastic rounding / dropout-free determinism */
  /* 0 = fp32 gradients; 1 = bf16 gradients for the layers' four matrices (qkv, attention
   * projection, fc, fc projection; CUDA): 2 bytes per parameter less. Each micro-batch's weight
   * gradient is computed in fp32 and rounded once into the bf16 sum, so with accumulation every
   * micro-batch adds a rounding: meant for steps of one micro-batch. Everything else (embeddings,
   * biases, LayerNorm) stays fp32, and lcx_get_grads returns fp32 either way. The CPU backend
   * ignores it (its gradients are always fp32). */
  int32_t grad_dtype;
} lcx_train_config;

LCX_API lcx_status lcx_train_init(lcx_model* m, const lcx_train_config* cfg);
LCX_API lcx_status lcx_zero_grad(lcx_model* m);
/* Forward + backward of one micro-batch; adds grad_scale * d(mean loss)/dparams to the
 * gradient buffers (use grad_scale = 1/num_micro_batches to accumulate). */
LCX_API lcx_status lcx_forward_backward(lcx_model* m, const lcx_batch* b, float grad_scale,
                                        float* loss);
/* Clip, AdamW step with learning rate lr, step counter + 1. grad_norm = norm before clipping.
 * Returns LCX_ERR_NUMERIC (and leaves params untouched) if gradients hold NaN/Inf. */
LCX_API lcx_status lcx_optimizer_step(lcx_model* m, float lr, float* grad_norm);
LCX_API lcx_status lcx_get_grads(lcx_model* m, float* out, size_t count);
/* Checkpoint = params + AdamW m, v + step in one safetensors file (written atomically). */
LCX_API lcx_status lcx_save_checkpoint(lcx_model* m, const char* path);
LCX_API lcx_status lcx_load_checkpoint(lcx_model* m, const char* path);
LCX_API int64_t lcx_optimizer_steps(const lcx_model* m);

/* ---- generation ------------------------------------------------------------------- */
typedef struct lcx_sampling {
  float temperature;        /* 0 = greedy */
  int32_t top_k;            /* 0 = off */
  float top_p;              /* 1 = off */
  float repetition_penalty; /* 1 = off; CTRL-style over tokens in the context */
  uint64_t seed;
} lcx_sampling;

/* A KV cache of up to max_tokens (<= n_positions) for one sequence. */
LCX_API lcx_status lcx_gen_create(lcx_model* m, int32_t max_tokens, lcx_gen** out);
LCX_API void lcx_gen_free(lcx_gen* g);
LCX_API lcx_status lcx_gen_reset(lcx_gen* g);
/* Appends tokens to the cache (prefill); logits of the last one (V floats) if logits != NULL. */
LCX_API lcx_status lcx_gen_feed(lcx_gen* g, const int32_t* tokens, int32_t n, float* logits);
/* Samples the next token from the last logits (sampling seeded once at first call after
 * create/reset, from s->seed), appends it to the cache, returns it in *token. */
LCX_API lcx_status lcx_gen_next(lcx_gen* g, const lcx_sampling* s, int32_t* token);
LCX_API int32_t lcx_gen_length(const lcx_gen* g);

/* ---- memory / device -------------------------------------------------------------- */
typedef struct lcx_memory_stats {
  int64_t allocated_bytes;  /* live allocations of the engine */
  int64_t mapped_bytes;     /* physical memory the allocator holds (CUDA) / = allocated on CPU */
  int64_t peak_allocated_bytes;
  int64_t peak_mapped_bytes;
  int64_t reserved_va_bytes;/* virtual address space reserved (expandable mode) */
  double fragmentation;     /* 1 - allocated/mapped */
  int32_t expandable;       /* 1 = VMM expandable segments, 0 = classic */
} lcx_memory_stats;
LCX_API lcx_status lcx_memory_stats_get(lcx_model* m, lcx_memory_stats* out);
LCX_API lcx_status lcx_memory_reset_peak(lcx_model* m);
/* CUDA allocator mode for models created after the call: 1 expandable (default), 0 classic. */
LCX_API lcx_status lcx_cuda_set_allocator(int32_t expandable);

#ifdef __cplusplus
}
#endif
#endif /* LONGCTX_H */
