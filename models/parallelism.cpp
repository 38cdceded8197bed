#include "models/parallelism.h"

#include <algorithm>

#include "models/limits.h"

namespace epsim {

const Schema& Parallelism::schema() {
  static const Schema s{"parallelism", {
      {"attention_tp", "integer", 1, "GPUs", "attention tensor-parallel degree (within a node); 1 = pure data parallel"},
      {"ep", "integer", 0, "GPUs", "expert-parallel degree: GPUs holding one copy of all routed experts (0 = all GPUs)"},
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
  p.ep = c.integer_in<int>("ep", 0, limits::kGpus);
  if (p.ep == 0) p.ep = gpus;
  if (p.ep > gpus || gpus % p.ep != 0)
    c.fail("ep", "must divide the GPU count (nodes x gpus_per_node = " + std::to_string(gpus) + ")");
  p.shared_expert = c.choice("shared_expert", {"local", "routed"});
  if (p.shared_expert == "routed") {
    if (model.shared_experts == 0) c.fail("shared_expert", "needs model.shared_experts > 0");
    // The placement checks that the slots add up (routed + shared + redundant_slots over ep).
    p.experts_per_gpu = std::max(1, (model.routed_experts + model.shared_experts) / p.ep);
    return p;
  }
  if (model.routed_experts % p.ep != 0)
    c.fail("ep", "must divide model.routed_experts = " + std::to_string(model.routed_experts) +
                     " (at most one expert per GPU needs ep = routed_experts)");
  p.experts_per_gpu = model.routed_experts / p.ep;
  return p;
}

}  // namespace epsim
