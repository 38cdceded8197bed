// Placements and load statistics as files, in the layout of DeepSeek's EPLB and the serving systems
// that load its output:
//
//   {"num_layers": L, "num_logical_experts": E, "num_physical_experts": P, "num_gpus": ep,
//    "phy2log": [[expert of slot 0, ...], ...],        L x P; slot p lives on GPU p / (P / ep)
//    "log2phy": [[[slots of expert 0, -1 padded], ...], ...],   L x E x max replicas
//    "logcnt":  [[replicas of expert 0, ...], ...]}    L x E
//
// Reading needs only phy2log (one row applies to every MoE layer); log2phy and logcnt, when present,
// must agree with it. Load statistics: {"load": [[tokens of expert 0, ...], ...]} (MoE layers x E,
// or one row for all layers), or the bare array.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "placement/placement.h"

namespace epsim {

// Rows for `moe_layers` MoE layers starting at the placement's first layer.
nlohmann::json placement_to_json(const Placement& placement, int moe_layers);

// `where` names the source in errors ("placement.json"); throws ConfigError(where:phy2log[l][p], ...).
Placement placement_from_json(const nlohmann::json& j, const std::string& where, int experts, int ep, int moe_layers,
                              int first_layer);
Placement read_placement_file(const std::string& file, int experts, int ep, int moe_layers, int first_layer);

// One row per MoE layer (a single row in the file is repeated).
std::vector<std::vector<double>> load_stats_from_json(const nlohmann::json& j, const std::string& where, int experts,
                                                      int moe_layers);
std::vector<std::vector<double>> read_load_stats(const std::string& file, int experts, int moe_layers);

}  // namespace epsim
