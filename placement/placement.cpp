#include "placement/placement.h"

#include <algorithm>
#include <optional>

#include "models/errors.h"
#include "placement/eplb.h"
#include "placement/expected_routing.h"
#include "placement/gate_routing.h"
#include "placement/interchange.h"
#include "placement/layouts.h"
#include "placement/topology_aware.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }

// One table when every layer's table is the same.
std::vector<LayerPlacement> dedupe(std::vector<LayerPlacement> tables) {
  for (const auto& t : tables)
    if (!(t == tables.front())) return tables;
  tables.resize(1);
  return tables;
}
}  // namespace

// EPLB re-planned around failed GPUs: the live GPUs form the group EPLB packs (nodes = the live
// nodes when whole nodes failed, else one), and the failed GPUs' slots stay empty.
Placement Placement::eplb_over_live(const std::vector<std::vector<double>>& weight, const std::vector<int>& moe_layers, int slots_per_gpu, int groups, int ep,
                                    int gpus_per_node, const std::vector<int>& failed, EplbPolicy policy) {
  const int E = static_cast<int>(weight.front().size());
  std::vector<char> down(z(ep), 0);
  for (int g : failed) down[z(g)] = 1;
  std::vector<int> live;
  for (int g = 0; g < ep; ++g)
    if (!down[z(g)]) live.push_back(g);
  const int physical = static_cast<int>(live.size()) * slots_per_gpu;
  if (physical < E)
    throw ConfigError("faults.replan_placement", "true",
                      "the " + std::to_string(live.size()) + " live GPUs hold " + std::to_string(physical) + " slots, fewer than the " +
                          std::to_string(E) + " experts, so no plan keeps them all (leave it false and set faults.allow_lost_experts "
                          "to drop the experts the failure took)");
  bool whole_nodes = ep % gpus_per_node == 0;
  for (int n = 0; whole_nodes && n < ep / gpus_per_node; ++n)
    for (int r = 1; r < gpus_per_node; ++r) whole_nodes = whole_nodes && down[z(n * gpus_per_node + r)] == down[z(n * gpus_per_node)];
  const int nodes = whole_nodes ? static_cast<int>(live.size()) / gpus_per_node : 1;
  const EplbResult r = rebalance_experts(weight, physical, groups, nodes, static_cast<int>(live.size()), policy);
  std::vector<LayerPlacement> tables;
  for (const auto& row : r.phy2log) {
    std::vector<int> full(z(ep * slots_per_gpu), -1);
    for (std::size_t k = 0; k < live.size(); ++k)
      for (int j = 0; j < slots_per_gpu; ++j) full[z(live[k] * slots_per_gpu + j)] = row[k * z(slots_per_gpu) + z(j)];
    tables.emplace_back(E, ep, std::move(full));
  }
  return Placement("eplb", moe_layers, dedupe(std::move(tables)));
}

Placement::Placement(std::string strategy, std::vector<int> moe_layers, std::vector<LayerPlacement> tables)
    : strategy_(std::move(strategy)), moe_layers_(std::move(moe_layers)), tables_(std::move(tables)) {
  if (tables_.empty()) throw SimulationError("Placement without tables");
  if (tables_.size() > 1 && moe_layers_.size() != tables_.size())
    throw SimulationError("Placement: " + std::to_string(tables_.size()) + " tables for " + std::to_string(moe_layers_.size()) + " MoE layers");
  for (const auto& t : tables_)
    if (t.experts() != tables_.front().experts() || t.ep() != tables_.front().ep())
      throw SimulationError("Placement: tables differ in experts or ep");
}

const LayerPlacement& Placement::layer(int layer) const {
  if (tables_.size() == 1) return tables_.front();
  const auto it = std::lower_bound(moe_layers_.begin(), moe_layers_.end(), layer);
  if (it == moe_layers_.end() || *it != layer) return tables_.front();
  return tables_[static_cast<std::size_t>(it - moe_layers_.begin())];
}

const LayerPlacement& Placement::moe_table(int index) const {
  if (tables_.size() == 1) return tables_.front();
  if (index < 0 || static_cast<std::size_t>(index) >= tables_.size())
    throw SimulationError("Placement: no table for MoE layer " + std::to_string(index));
  return tables_[static_cast<std::size_t>(index)];
}

Time expert_compute_per_token(const MoeModelSpec& model, const GpuSpec& gpu) {
  return Flops(6.0 * static_cast<double>(model.hidden) * static_cast<double>(model.expert_intermediate)) /
         gpu.effective_flops(model.precision.routed_experts);
}

Placement Placement::contiguous(int experts, int ep) {
  return Placement("contiguous", {}, {contiguous_layout(experts, ep)});
}

Placement Placement::make(const PlacementSpec& spec, int experts, int ep) {
  return layouts(spec, experts, ep).with_replica_choice(replica_choice_from_name(spec.replica_choice));
}

Placement Placement::make(const PlacementSpec& spec, const PlacementInputs& in) {
  Placement p = layouts(spec, in).with_replica_choice(replica_choice_from_name(spec.replica_choice));
  return in.failed_gpus.empty() ? p : p.without_gpus(in.failed_gpus);
}

Placement Placement::without_gpus(const std::vector<int>& gpus) const {
  std::vector<LayerPlacement> tables;
  for (const LayerPlacement& t : tables_) tables.push_back(t.without_gpus(gpus));
  Placement out(strategy_, moe_layers_, std::move(tables));
  out.replica_choice_ = replica_choice_;
  return out;
}

std::vector<std::vector<int>> Placement::lost_experts() const {
  std::vector<std::vector<int>> out;
  for (const LayerPlacement& t : tables_) out.push_back(t.lost());
  return out;
}

Placement Placement::layouts(const PlacementSpec& spec, int experts, int ep) {
  if (spec.resolved) return *spec.resolved;
  if (spec.strategy == "contiguous") return contiguous(experts, ep);
  if (spec.strategy == "random") return Placement("random", {}, {random_layout(experts, ep, spec.seed)});
  throw ConfigError("placement.strategy", "\"" + spec.strategy + "\"",
                    "needs the cluster and the gate model: this caller uses Placement::make(spec, experts, ep); "
                    "it must call Placement::make(spec, PlacementInputs)");
}

Placement Placement::layouts(const PlacementSpec& spec, const PlacementInputs& in) {
  if (spec.resolved) return *spec.resolved;
  const MoeModelSpec& m = in.model;
  const int E = m.routed_experts, ep = in.ep, moe = m.moe_layers();
  const std::vector<int> layers = m.moe_layer_list();
  const int G = in.cluster.gpu_count(), gpn = in.cluster.gpus_per_node();
  const std::string& s = spec.strategy;
  if (s == "contiguous" || s == "random") return layouts(spec, E, ep);
  if (s == "round_robin") return Placement(s, {}, {round_robin_layout(E, ep, gpn)});
  if (s == "file") return read_placement_file(spec.file, m, ep);

  // The routing-aware strategies: an expected routing matrix per MoE layer.
  std::optional<std::vector<std::vector<double>>> stats;
  if (!spec.load_stats.empty()) stats = read_load_stats(spec.load_stats, m);
  auto routing_of = [&](int l) {  // l: MoE layer index
    if (stats) return ExpectedRouting::from_load((*stats)[z(l)], G, static_cast<double>(in.tokens_per_gpu), m.top_k);
    return gate_expected_routing(in.gate, layers[z(l)], G, in.tokens_per_gpu);
  };
  const Bytes token_bytes = m.precision.dispatch_bytes_per_token(m.hidden);  // what a dispatch carries per token

  if (s == "eplb") {
    std::vector<std::vector<double>> weight;
    for (int l = 0; l < moe; ++l) weight.push_back(stats ? (*stats)[z(l)] : routing_of(l).expert_load());
    const int physical = E + spec.redundant_slots;
    if (physical % ep != 0)
      throw ConfigError("placement.redundant_slots", std::to_string(spec.redundant_slots),
                        "routed_experts (" + std::to_string(E) + ") + redundant_slots must be a multiple of ep = " + std::to_string(ep));
    const EplbPolicy policy = spec.eplb_policy == "hierarchical" ? EplbPolicy::Hierarchical
                              : spec.eplb_policy == "global"     ? EplbPolicy::Global
                                                                 : EplbPolicy::Auto;
    if (in.replan && !in.failed_gpus.empty()) return eplb_over_live(weight, layers, physical / ep, m.groups, ep, gpn, in.failed_gpus, policy);
    const int nodes = ep % gpn == 0 ? ep / gpn : 1;
    const EplbResult r = rebalance_experts(weight, physical, m.groups, nodes, ep, policy);
    std::vector<LayerPlacement> tables;
    for (const auto& row : r.phy2log) tables.emplace_back(E, ep, row);
    return Placement(s, layers, dedupe(std::move(tables)));
  }

  std::vector<LayerPlacement> tables;
  std::optional<ExpectedRouting> previous;
  for (int l = 0; l < moe; ++l) {
    ExpectedRouting r = routing_of(l);
    if (previous && previous->counts == r.counts && previous->tokens == r.tokens) {
      tables.push_back(tables.back());
      continue;
    }
    if (s == "colocated") {
      tables.push_back(colocated_layout(r, ep, spec.colocate));
    } else {  // topology_aware
      tables.push_back(topology_aware_layout(r, in.cluster, ep, token_bytes, SearchOptions{spec.search_moves, spec.seed, in.compute_per_token}));
    }
    previous = std::move(r);
  }
  return Placement(s, layers, dedupe(std::move(tables)));
}

}  // namespace epsim
