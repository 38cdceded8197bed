// The `routing` section of a scenario: which distribution the gate draws from, its skew, the group
// limit, the load-balancing rule and the capacity factor.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace epsim {

enum class Balance { None, Bias };

struct RoutingSpec {
  std::string distribution = "uniform";  // uniform | uniform-sampled | zipf | hot | trace
  std::uint64_t seed = 1;
  double zipf_s = 1.0;                   // zipf: weight of the r-th most popular expert ~ 1 / r^s
  int hot_experts = 8;                   // hot: how many experts are hot
  double hot_fraction = 0.5;             // hot: share of all selections that go to the hot experts
  bool group_limited = true;             // apply model.topk_groups when model.groups > 1
  int max_nodes = 0;                     // node-limited routing: a token's experts on at most this many nodes (0: off)
  std::string trace;                     // trace: JSON or CSV file of per-layer expert loads
  // Not a scenario key: a trace document given in memory (epsim validate passes a measured case's
  // `trace` block); when set, `trace` only names it in error messages.
  nlohmann::json trace_document;
  Balance balance = Balance::None;
  double bias_step = 0.07;               // u of the sign rule, in log-weight units
  double capacity_factor = 0.0;          // 0: no token dropping

  static const Schema& schema();
  static RoutingSpec from_json(const nlohmann::json& j, const std::string& path);
};

}  // namespace epsim
