#include "models/routing_spec.h"

#include <algorithm>

#include "models/limits.h"

namespace epsim {

const Schema& RoutingSpec::schema() {
  static const Schema s{"routing", {
      {"distribution", "string", "uniform", "",
       "uniform: every expert gets exactly tokens x top_k / experts from every source (remainders spread evenly) | "
       "uniform-sampled: equal probabilities, random counts | zipf: the r-th most popular expert has weight 1/r^zipf_s "
       "(a random expert order per layer) | hot: hot_experts experts take hot_fraction of the selections (each at most one per token) | "
       "trace: per-layer loads from the file `trace`"},
      {"seed", "integer", 1, "", "seed of every random choice in the run"},
      {"zipf_s", "number", 1.0, "", "zipf: exponent s >= 0 (0 = uniform)"},
      {"hot_experts", "integer", 8, "experts", "hot: number of hot experts per layer (a random set per layer)"},
      {"hot_fraction", "number", 0.5, "", "hot: fraction of all selections the hot experts take, in (0, 1)"},
      {"group_limited", "bool", true, "",
       "when model.groups > 1, each token uses at most model.topk_groups groups (DeepSeek-V3 node-limited routing)"},
      {"max_nodes", "integer", 0, "nodes",
       "node-limited routing without expert groups: each token's top_k experts lie on at most this many nodes of its EP "
       "group (its distinct tokens per node and GPU follow; the per-expert counts do not change); 0 = no limit. Needs "
       "the group limit off (model.topk_groups = model.groups or routing.group_limited = false)"},
      {"trace", "string", "", "path",
       "trace: JSON or CSV file of per-layer expert loads, optionally per source GPU (format: scenarios/README.md)"},
      {"balance", "string", "none", "",
       "none | bias: auxiliary-loss-free balancing, after each step bias_e += bias_step x sign(mean load - load_e), "
       "selection weight x exp(bias_e)"},
      {"bias_step", "number", 0.07, "log-weight",
       "bias: step u of the sign rule, in units of log selection weight; larger converges faster (~ln(hottest / coldest weight) / 2u steps) but settles at max/mean ~1 + u (1 + 2u group-limited)"},
      {"capacity_factor", "number", 0.0, "",
       "0 = off; else each expert takes at most ceil(capacity_factor x mean expert load) of a layer's selections and "
       "drops the rest"},
  }};
  return s;
}

RoutingSpec RoutingSpec::from_json(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json obj = j.is_null() ? nlohmann::json::object() : j;
  ConfigObject c(obj, path, schema());
  RoutingSpec r;
  r.distribution = c.choice("distribution", {"uniform", "uniform-sampled", "zipf", "hot", "trace"});
  r.seed = c.integer_in<std::uint64_t>("seed", 0, std::numeric_limits<std::int64_t>::max());
  r.zipf_s = c.non_negative("zipf_s");
  if (r.zipf_s > 16.0) c.fail("zipf_s", "must be <= 16");
  r.hot_experts = c.integer_in<int>("hot_experts", 1, limits::kExperts);
  r.hot_fraction = c.fraction("hot_fraction");
  if (r.hot_fraction >= 1.0) c.fail("hot_fraction", "must be in (0, 1)");
  r.group_limited = c.boolean("group_limited");
  r.max_nodes = c.integer_in<int>("max_nodes", 0, limits::kGpus);
  r.trace = c.string("trace");
  r.balance = c.choice("balance", {"none", "bias"}) == "bias" ? Balance::Bias : Balance::None;
  r.bias_step = c.positive("bias_step");
  if (r.bias_step > limits::kMaxBiasStep) c.fail("bias_step", "must be in (0, 1]");
  r.capacity_factor = c.number_in("capacity_factor", 0.0, limits::kMaxCapacityFactor);
  if (r.distribution == "trace" && r.trace.empty()) c.fail("trace", "required when distribution is \"trace\"");
  if (r.distribution != "trace" && !r.trace.empty())
    c.fail("trace", "only read when distribution is \"trace\" (distribution is \"" + r.distribution + "\")");
  if (r.distribution == "trace" && r.balance == Balance::Bias)
    c.fail("balance", "a trace fixes the loads: bias balancing needs a sampled distribution");
  return r;
}

}  // namespace epsim
