// How the model is split over GPUs: attention data-parallel with optional tensor parallelism,
// routed experts spread over an expert-parallel group of `ep` GPUs.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/moe_model.h"

namespace epsim {

struct Parallelism {
  int attention_tp = 1;  // GPUs of one node sharing each attention layer's heads
  int ep = 0;            // GPUs holding one full set of routed experts (0: all GPUs)
  int experts_per_gpu = 1;

  static const Schema& schema();
  // Checks the split against the model and the GPU count (ep, tp and node sizes must divide).
  static Parallelism from_json(const nlohmann::json& j, const std::string& path, const MoeModelSpec& model,
                               int gpus, int gpus_per_node);
};

}  // namespace epsim
