#include "models/parallelism.h"

#include <algorithm>

#include "models/limits.h"

namespace epsim {

const Schema& Parallelism::schema() {
  static const Schema s{"parallelism", {
      {"attention_tp", "integer", 1, "GPUs", "attention tensor-parallel degree (within a node); 1 = pure data parallel"},
      {"ep", "integer", 0, "GPUs", "expert-parallel degree: GPUs holding one copy of all routed experts (0 = all GPUs of a pipeline stage); must divide the GPUs of a stage"},
      {"pp", "integer", 1, "stages", "pipeline-parallel stages (training): the GPUs split into pp ranks of consecutive GPUs (whole nodes, or an equal part of one), the layers into consecutive stages; each rank is its own EP group(s) and sends activations and gradients to its neighbours on the fabric; schedule.pipeline orders the micro-batches"},
      {"slots_per_gpu", "integer", 0, "slots", "physical expert slots per GPU in each MoE layer (0: routed experts / ep, or with placement.redundant_slots (routed + redundant) / ep); ep x slots_per_gpu must hold the routed (+ routed shared) experts, and any extra slots hold redundant experts chosen by placement.strategy = eplb (or given by a placement file), so ep need not divide the expert count: EP 72 with 256 routed experts takes 4 slots, 32 of them redundant; memory counts every slot"},
      {"shared_expert", "string", "local", "", "local: every GPU computes the shared experts on its own tokens | routed: the shared experts become experts every token takes besides its top-k, placed in expert slots with replicas (placement.redundant_slots under eplb gives them the replicas their load asks for) and reached by the dispatch, as DeepSeek-V3 decodes; routed_experts + shared + redundant_slots must fill ep x slots"},
  }};
  return s;
}

Parallelism Parallelism::from_json(const nlohmann::json& j, const std::string& path, const MoeModelSpec& model,
                                   int gpus, int gpus_per_node) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  Parallelism p;
  p.attention_tp = c.integer_in<int>("attention_tp", 1, limits::kGpus);
  if (gpus_per_node % p.attention_tp != 0)
    c.fail("attention_tp", "must divide cluster.gpus_per_node = " + std::to_string(gpus_per_node));
  p.pp = c.integer_in<int>("pp", 1, limits::kGpus);
  if (gpus % p.pp != 0) c.fail("pp", "must divide the GPU count (nodes x gpus_per_node = " + std::to_string(gpus) + ")");
  const int stage = gpus / p.pp;  // GPUs of one pipeline stage
  if (stage % gpus_per_node != 0 && gpus_per_node % stage != 0)
    c.fail("pp", "a stage of " + std::to_string(stage) + " GPUs must be whole nodes or divide a node of " + std::to_string(gpus_per_node));
  if (stage % p.attention_tp != 0) c.fail("attention_tp", "must divide the " + std::to_string(stage) + " GPUs of a pipeline stage");
  p.ep = c.integer_in<int>("ep", 0, limits::kGpus);
  if (p.ep == 0) p.ep = stage;
  if (p.pp == 1 && (p.ep > gpus || gpus % p.ep != 0))
    c.fail("ep", "must divide the GPU count (nodes x gpus_per_node = " + std::to_string(gpus) + ")");
  if (p.ep > stage || stage % p.ep != 0)
    c.fail("ep", "must divide the " + std::to_string(stage) + " GPUs of a pipeline stage (parallelism.pp = " + std::to_string(p.pp) + ")");
  p.shared_expert = c.choice("shared_expert", {"local", "routed"});
  if (p.shared_expert == "routed" && model.shared_experts == 0) c.fail("shared_expert", "needs model.shared_experts > 0");
  p.slots_per_gpu = c.integer_in<int>("slots_per_gpu", 0, limits::kExperts);
  if (p.slots_per_gpu > 0) {
    const int experts = model.routed_experts + p.routed_shared(model);
    if (static_cast<long>(p.ep) * p.slots_per_gpu < experts)
      c.fail("slots_per_gpu", "ep x slots_per_gpu = " + std::to_string(p.ep * p.slots_per_gpu) + " slots must hold the " +
                                  std::to_string(experts) + " routed" + (p.routed_shared(model) > 0 ? " and routed shared" : "") + " experts");
    p.experts_per_gpu = p.slots_per_gpu;
    return p;
  }
  if (p.shared_expert == "routed") {
    // The placement checks that the slots add up (routed + shared + redundant_slots over ep).
    p.experts_per_gpu = std::max(1, (model.routed_experts + model.shared_experts) / p.ep);
    return p;
  }
  if (model.routed_experts % p.ep != 0)
    c.fail("ep", "must divide model.routed_experts = " + std::to_string(model.routed_experts) +
                     " (at most one expert per GPU needs ep = routed_experts), or set parallelism.slots_per_gpu (ep x slots >= the experts; the extra slots hold redundant experts)");
  p.experts_per_gpu = model.routed_experts / p.ep;
  return p;
}

}  // namespace epsim
