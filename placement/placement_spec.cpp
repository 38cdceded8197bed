#include "placement/placement_spec.h"

#include "models/limits.h"
#include "placement/replica_choice.h"

namespace epsim {

const std::vector<std::string>& PlacementSpec::strategies() {
  static const std::vector<std::string> names = {"contiguous", "round_robin", "random", "colocated",
                                                 "topology_aware", "eplb", "file"};
  return names;
}

const Schema& PlacementSpec::schema() {
  static const Schema s{"placement", {
      {"strategy", "string", "contiguous", "",
       "contiguous: expert e in slot e (k = experts / ep consecutive experts per GPU); round_robin: experts dealt across "
       "nodes, then across each node's GPUs; random: a seeded random permutation; colocated: `colocate` experts per "
       "GPU, grouped by how often the same tokens select them; topology_aware: minimise the busiest link's expected "
       "dispatch time (greedy node affinity + local search); eplb: DeepSeek's EPLB with `redundant_slots` replicas; "
       "file: read `file`"},
      {"seed", "integer", 1, "", "seed of random and of topology_aware's local search"},
      {"colocate", "integer", 0, "experts", "colocated: experts per GPU (0 = routed_experts / ep); above that, fewer GPUs hold experts"},
      {"redundant_slots", "integer", 0, "slots",
       "eplb: physical slots beyond the routed experts per EP group, given to the experts with the highest load per "
       "replica; routed_experts + redundant_slots must be a multiple of ep"},
      {"eplb_policy", "string", "auto", "",
       "eplb: hierarchical (expert groups packed onto nodes first), global or auto (hierarchical when model.groups is a "
       "multiple of the EP group's nodes, as DeepSeek's EPLB)"},
      {"file", "string", "", "path",
       "strategy file: a placement file in the layout of DeepSeek's EPLB (phy2log: MoE layers x physical slots -> "
       "expert; optional log2phy, logcnt), SGLang (physical_to_logical_map: one row per model layer, its "
       "--init-expert-location file), vLLM (its EplbState: physical_to_logical_map per MoE layer, optional "
       "logical_to_physical_map, logical_replica_count) or vLLM Ascend (moe_layer_count, layer_list of device_expert "
       "lists), told apart by their keys (placement/interchange.h); one row applies to every layer"},
      {"load_stats", "string", "", "path",
       "per-layer expert loads driving eplb and topology_aware instead of the gate model's expected selection "
       "probabilities: EPLB's {\"load\": MoE layers x experts, or one row}, SGLang's expert-distribution dump "
       "{\"logical_count\": (steps x) layers x experts}, or vLLM's {\"expert_load_window\" or \"expert_load_pass\": "
       "physical loads, with physical_to_logical_map}"},
      {"search_moves", "integer", 4000, "", "topology_aware: slot swaps the local search evaluates per distinct layer"},
      {"replica_choice", "string", "even", "",
       "how a source GPU splits an expert's tokens over the expert's replicas (eplb's redundant slots, the routed "
       "shared expert): even: over every replica (vLLM's round robin); nearest: over the replicas on its own GPU, else "
       "on its node, else every replica (a deployment that keeps replicas close, e.g. one shared-expert replica per node)"},
  }};
  return s;
}

PlacementSpec PlacementSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  PlacementSpec p;
  p.strategy = c.choice("strategy", strategies());
  p.seed = c.integer_in<std::uint64_t>("seed", 0, std::numeric_limits<std::int64_t>::max());
  p.colocate = c.integer_in<int>("colocate", 0, limits::kExperts);
  p.redundant_slots = c.integer_in<int>("redundant_slots", 0, limits::kExperts);
  p.eplb_policy = c.choice("eplb_policy", {"auto", "hierarchical", "global"});
  p.file = c.string("file");
  p.load_stats = c.string("load_stats");
  p.search_moves = c.integer_in<int>("search_moves", 0, limits::kSearchMoves);
  p.replica_choice = c.choice("replica_choice", replica_choice_names());
  if (p.redundant_slots > 0 && p.strategy != "eplb") c.fail("redundant_slots", "only the eplb strategy adds redundant slots");
  if (p.strategy == "file" && p.file.empty()) c.fail("file", "strategy \"file\" needs a placement file");
  if (p.colocate > 0 && p.strategy != "colocated") c.fail("colocate", "only the colocated strategy takes colocate");
  return p;
}

}  // namespace epsim
