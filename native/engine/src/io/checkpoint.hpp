// Training checkpoints: one safetensors file with the canonical fp32 tensors
//   params.<name>, adam_m.<name>, adam_v.<name>   (name: wte, wpe, ln1w, ... lnfb; the Adam
//                                                  moments only when the optimizer has state)
// and __metadata__ {"format": "longctx-checkpoint", "longctx_checkpoint_version": "1",
// "step": "<n>", "architecture": "<HF class>", "config": "<lcx_config as JSON>"}.
// Written atomically (temp file in the same folder, fsync, rename), so an interrupted save
// leaves the previous checkpoint intact.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "json.hpp"
#include "longctx.h"
#include "safetensors.hpp"

namespace lcx {

const char* canonical_tensor_name(int tensor_index);  // "wte", "wpe", "ln1w", ...
std::vector<int64_t> canonical_tensor_shape(const lcx_config& cfg, int tensor_index);

// Every field of the config (attention arrays for the first n_layer layers only).
Json config_to_json(const lcx_config& cfg);
lcx_config config_from_json(const Json& j, const std::string& source);  // LCX_ERR_FORMAT if bad
// "" when a and b describe the same model; otherwise the first difference, e.g.
// "n_positions is 2048 here and 4096 there".
std::string config_difference(const lcx_config& here, const lcx_config& there);

// adam_m / adam_v may both be nullptr (no optimizer state yet).
void write_checkpoint(const std::string& path, const lcx_config& cfg,
                      const std::string& architecture, const float* params, const float* adam_m,
                      const float* adam_v, int64_t step);

// Opens a checkpoint and checks it was written for a model with config `expected`
// (LCX_ERR_ARG naming the difference) and holds every tensor with the right shape.
class CheckpointReader {
 public:
  CheckpointReader(const std::string& path, const lcx_config& expected);
  int64_t step() const { return step_; }
  bool has_optimizer_state() const { return has_adam_; }
  void read_params(float* out);                   // layout.total floats
  void read_optimizer_state(float* m, float* v);  // layout.total floats each

 private:
  void read_group(const char* group, float* out);
  SafetensorsFile file_;
  lcx_config cfg_;
  int64_t step_ = 0;
  bool has_adam_ = false;
};

}  // namespace lcx
