// Hugging Face model folders <-> the canonical fp32 parameters (longctx.h).
//
// GPT2LMHeadModel (model_type "gpt2"): config keys vocab_size, n_positions (n_ctx in old
// configs), n_embd, n_layer, n_head, n_inner (null = 4 * n_embd), layer_norm_epsilon,
// activation_function (gelu_new), tie_word_embeddings (default true). Tensors, the
// "transformer." prefix optional:
//   wte.weight [V,C]  wpe.weight [P,C]  ln_f.{weight,bias} [C]
//   h.{i}.ln_1.{weight,bias} [C]   h.{i}.ln_2.{weight,bias} [C]
//   h.{i}.attn.c_attn.weight [C,3C] + bias [3C]   h.{i}.attn.c_proj.weight [C,C] + bias [C]
//   h.{i}.mlp.c_fc.weight [C,F] + bias [F]       h.{i}.mlp.c_proj.weight [F,C] + bias [C]
// Conv1D weights are stored [in, out] and transposed to the canonical [out, in]. The buffers
// h.{i}.attn.bias / h.{i}.attn.masked_bias of old checkpoints are ignored.
//
// RuGPT3XLForCausalLM (model_type "rugpt3xl"; the transformers port of ai-forever/rugpt3xl by
// EvilFreelancer, modeling_rugpt3xl.py / configuration_rugpt3xl.py): config keys vocab_size,
// hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
// max_position_embeddings, layer_norm_eps, hidden_act (gelu_new), tie_word_embeddings (default
// false), sparse_mode ("none" | "alternating": even layer index sparse | "all"),
// sparse_block_size (16), sparse_num_local_blocks (8), sparse_num_global_blocks (1),
// sparse_num_different_global_patterns (8); defaults are the port's. The port always varies the
// global pattern per head, i.e. DeepSpeed different_layout_per_head = true and
// unidirectional; an optional sparse_different_layout_per_head key is honoured. Tensors, the
// "model." prefix optional, all nn.Linear [out, in]:
//   embed_tokens.weight [V,C]  embed_positions.weight [P,C]  norm.{weight,bias} [C]
//   layers.{i}.input_layernorm.{weight,bias}  layers.{i}.post_attention_layernorm.{weight,bias}
//   layers.{i}.self_attn.{q,k,v,o}_proj.weight [C,C] + bias [C]
//   layers.{i}.mlp.up_proj.weight [F,C] + bias [F]  layers.{i}.mlp.down_proj.weight [C,F] + bias [C]
//   lm_head.weight [V,C] (the port stores a copy of embed_tokens)
//
// lm_head.weight: the engine ties the output projection to wte. When the config ties them
// (tie_word_embeddings true) a stored lm_head.weight is ignored, as transformers does. When it
// does not, lm_head.weight must be present and bit-identical to the token embedding, otherwise
// the model is refused (LCX_ERR_UNSUPPORTED) rather than silently computed with the wrong head.
// On save, lm_head.weight is written (a copy of wte) exactly when the config does not tie.
//
// LongCtx extensions, written only when the model needs them and read back on load:
//   "longctx_attention": ["dense" | "sparse" | "window:N", ...]  one entry per layer; overrides
//                        what sparse_mode says (transformers ignores it: window layers run dense
//                        there).
//   "longctx_sparse": {"block", "num_local_blocks", "num_global_blocks",
//                      "different_layout_per_head", "num_different_global_patterns",
//                      "unidirectional", "horizontal_global_attention"}  sparse settings of a
//                      GPT-2 model that has sparse layers (ruGPT3XL uses its sparse_* keys).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "json.hpp"
#include "longctx.h"
#include "safetensors.hpp"

namespace lcx {

struct HfConfig {
  lcx_config cfg{};
  std::string architecture;  // "architectures"[0] of config.json, or the model_type
  bool lm_head_tied = true;  // tie_word_embeddings
  Json json;                 // config.json as read, to be written back with updates
};

// config.json text -> config; LCX_ERR_FORMAT (bad JSON / bad values, message starts with
// source), LCX_ERR_UNSUPPORTED (unknown architecture, listing the supported ones).
HfConfig parse_hf_config(const std::string& text, const std::string& source);
HfConfig read_hf_config(const std::string& dir);  // LCX_ERR_IO when dir/config.json is missing

// Config + safetensors headers: every expected tensor present with the right shape and a
// loadable dtype. Reads no weights.
lcx_model_info inspect_hf_model(const std::string& dir);

struct LoadedHfModel {
  lcx_config cfg{};
  std::string architecture;
  std::string config_json;    // the original config.json text
  std::vector<float> params;  // canonical layout
};
LoadedHfModel load_hf_model(const std::string& dir);

// The config.json to write for cfg: original_json (may be empty: a fresh config) with the model
// fields updated and all other keys kept in order.
std::string make_hf_config_json(const lcx_config& cfg, const std::string& architecture,
                                const std::string& original_json, StoredDtype dtype);

// Writes config.json + weights in the HF layout of cfg.arch. architecture may be empty (the
// default class name of cfg.arch is used).
void save_hf_model(const std::string& dir, const lcx_config& cfg, const std::string& architecture,
                   const std::string& original_json, const float* params, int64_t max_shard_bytes,
                   StoredDtype dtype = StoredDtype::F32);

// The HF class name written for a fresh model of this arch.
const char* default_hf_architecture(int arch);

}  // namespace lcx
