// Placements and expert-load statistics as files, in the layouts of DeepSeek's EPLB and of the
// serving systems that run large-EP deployments. A slot p lives on GPU p / (P / ep) of the EP group
// in all of them. P: physical slots, E: logical experts, L: the model's layers, M: its MoE layers.
//
// Placement (placement.file reads any of them, told apart by their keys and row counts):
//   eplb         {"phy2log": M x P, "log2phy": M x E x max replicas (-1 padded), "logcnt": M x E,
//                 "num_layers", "num_logical_experts", "num_physical_experts", "num_gpus", "strategy"}
//                 DeepSeek's EPLB output; only phy2log is needed, one row applies to every layer.
//   sglang       {"physical_to_logical_map": L x P}: SGLang's --init-expert-location file
//                 (ExpertLocationMetadata.init_by_mapping). One row per model layer, dense ones
//                 included (written as SGLang's trivial map p -> p mod E; not read back).
//   vllm         {"physical_to_logical_map": M x P, "logical_to_physical_map": M x E x max replicas,
//                 "logical_replica_count": M x E}: vLLM's EplbState tensors (vllm/distributed/eplb)
//                 as lists. vLLM writes no placement file of its own; this is its state dumped.
//   vllm-ascend  {"moe_layer_count": M, "layer_list": [{"layer_id": i, "device_count": ep,
//                 "device_list": [{"device_id": g, "device_expert": [expert of each local slot]}]}]}:
//                 the expert_map_path file of vLLM's Ascend plugin.
// Load statistics (placement.load_stats; logical loads per MoE layer and expert):
//   eplb         {"load": M x E} or the bare array (one row applies to every layer)
//   sglang       {"logical_count": L x E, or steps x L x E summed over steps}: SGLang's expert
//                 distribution recorder (stat mode) dump, as JSON (its .pt file: torch.load, then
//                 json.dump of .tolist())
//   vllm         {"expert_load_window": window x M x P, or "expert_load_pass": M x P, with
//                 "physical_to_logical_map": M x P to fold replicas into their expert (absent: P = E)}
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/moe_model.h"
#include "placement/placement.h"

namespace epsim {

enum class InterchangeFormat { eplb, sglang, vllm, vllm_ascend };
const std::vector<std::string>& interchange_format_names();  // eplb, sglang, vllm, vllm-ascend
// Throws ConfigError(`key`, name, rule) for an unknown name.
InterchangeFormat interchange_format(const std::string& name, const std::string& key);

// `model`: as the placement sees it (Parallelism::as_routed: routed shared experts included).
nlohmann::json placement_to_json(const Placement& placement, const MoeModelSpec& model,
                                 InterchangeFormat format = InterchangeFormat::eplb);
// `where` names the source in errors ("placement.json"): ConfigError(where:phy2log[l][p], ...).
Placement placement_from_json(const nlohmann::json& j, const std::string& where, const MoeModelSpec& model, int ep);
Placement read_placement_file(const std::string& file, const MoeModelSpec& model, int ep);

// `loads`: one row of E per MoE layer.
nlohmann::json load_stats_to_json(const std::vector<std::vector<double>>& loads, const MoeModelSpec& model,
                                  InterchangeFormat format = InterchangeFormat::eplb);
// One row per MoE layer (a single row in the file is repeated).
std::vector<std::vector<double>> load_stats_from_json(const nlohmann::json& j, const std::string& where,
                                                      const MoeModelSpec& model);
std::vector<std::vector<double>> read_load_stats(const std::string& file, const MoeModelSpec& model);

}  // namespace epsim
