// RoPE inverse frequencies for a config, computed in f32 exactly as transformers computes them
// (default, linear and llama3 scaling), so that rotated q/k match to the last bit where possible.
#pragma once

#include <vector>

#include "model/model_config.h"

namespace tokenfab {

// [head_dim / 2] inverse frequencies with the config's scaling applied.
std::vector<float> ComputeRopeInvFreq(const ModelConfig& config);

}  // namespace tokenfab
