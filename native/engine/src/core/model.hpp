// What an lcx_model handle is. Shared by api.cpp and the io layer.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend.hpp"
#include "longctx.h"

struct lcx_model {
  lcx_config cfg{};
  std::unique_ptr<lcx::Backend> backend;
  std::string hf_architecture;  // written back to config.json on save
  std::string hf_config_json;   // config.json as loaded ("" for a created model): save keeps its keys
  // Bumped by every backend->configure after creation (extend_positions, set_attention): a
  // generator made before holds a KV cache of the old shapes and must not be used.
  int64_t config_version = 0;
  bool train_ready = false;
  lcx_train_config train_cfg{};
};

struct lcx_gen {
  lcx_model* model = nullptr;
  std::unique_ptr<lcx::GenState> state;
  std::vector<float> last_logits;  // V floats of the last fed token
  std::vector<int32_t> tokens;     // the context, for repetition penalty
  uint64_t rng_state = 0;
  bool rng_seeded = false;
  int64_t config_version = 0;  // the model's config_version when this cache was made
};
