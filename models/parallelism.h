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
  int pp = 1;            // pipeline stages: the GPUs form pp ranks of consecutive GPUs, each its own EP group(s)
  int ep = 0;            // GPUs holding one full set of routed experts (0: all GPUs of a pipeline stage)
  // Physical expert slots per GPU and MoE layer as given (parallelism.slots_per_gpu; 0: derived).
  // ep x slots_per_gpu >= routed (+ routed shared) experts; the extra slots hold redundant experts
  // (placement eplb chooses them), so ep need not divide the expert count (EP 72: 256 + 32 in 4 x 72).
  int slots_per_gpu = 0;
  int experts_per_gpu = 1;  // physical slots per GPU (slots_per_gpu, or experts / ep)
  // local: every GPU computes the shared experts for its own tokens | routed: they join the routed
  // experts as experts every token takes, placed in expert slots (with replicas) and reached by the
  // dispatch, as DeepSeek-V3's decode deployment does (its "heavy-load" 9th expert).
  std::string shared_expert = "local";

  // Shared experts routed as experts (0 unless shared_expert = routed).
  int routed_shared(const MoeModelSpec& model) const { return shared_expert == "routed" ? model.shared_experts : 0; }
  // The model as the gate and the placement see it: routed shared experts appended to the routed ones.
  MoeModelSpec as_routed(MoeModelSpec model) const {
    model.routed_experts += routed_shared(model);
    return model;
  }

  // Slots beyond the experts (redundant experts), when slots_per_gpu is given; else 0.
  int extra_slots(const MoeModelSpec& model) const {
    return slots_per_gpu > 0 ? ep * slots_per_gpu - model.routed_experts - routed_shared(model) : 0;
  }

  static const Schema& schema();
  // Checks the split against the model and the GPU count (ep, tp and node sizes must divide).
  static Parallelism from_json(const nlohmann::json& j, const std::string& path, const MoeModelSpec& model,
                               int gpus, int gpus_per_node);
};

}  // namespace epsim
