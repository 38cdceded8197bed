// The gate (token-routing) model: per layer and micro-batch, how many tokens each source GPU sends
// to each routed expert under top-k.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/moe_model.h"

namespace epsim {

// counts[s * experts + e]: tokens of source s that selected expert e (each token selects top_k
// distinct experts, so sum over e = tokens[s] * top_k and counts <= tokens[s]).
struct RoutingSample {
  int sources = 0;
  int experts = 0;
  std::vector<std::int64_t> tokens;  // per source
  std::vector<std::int64_t> counts;
  std::int64_t at(int s, int e) const { return counts[static_cast<std::size_t>(s) * static_cast<std::size_t>(experts) + static_cast<std::size_t>(e)]; }
  std::vector<std::int64_t> expert_load() const;  // per expert, summed over sources
};

struct RoutingSpec {
  std::string distribution = "uniform";
  std::uint64_t seed = 1;
  static const Schema& schema();
  static RoutingSpec from_json(const nlohmann::json& j, const std::string& path);
};

class GateModel {
 public:
  GateModel(RoutingSpec spec, const MoeModelSpec& model) : spec_(std::move(spec)), model_(model) {}
  // `tokens_per_source` tokens on each of `sources` GPUs choose among model.routed_experts.
  RoutingSample sample(int layer, int micro_batch, int sources, std::int64_t tokens_per_source) const;

 private:
  RoutingSample uniform(int layer, int sources, std::int64_t tokens_per_source) const;
  RoutingSpec spec_;
  const MoeModelSpec& model_;
};

}  // namespace epsim
