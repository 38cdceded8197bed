#include "placement/destination_reach.h"

#include <map>

#include "models/errors.h"

namespace epsim {

std::shared_ptr<const SelectionLaw> node_limited_law(const SelectionLaw& law, const LayerPlacement& placement,
                                                     int gpus_per_node, int max_nodes) {
  const int E = law.experts();
  if (placement.experts() != E) throw SimulationError("node_limited_law: placement and law disagree on the expert count");
  std::vector<int> node(static_cast<std::size_t>(E));
  for (int e = 0; e < E; ++e)
    // Always-chosen experts and lost ones (no replica: their selections are dropped) stay outside.
    node[static_cast<std::size_t>(e)] = law.marginals()[static_cast<std::size_t>(e)] >= 1.0 - 1e-9 || placement.replica_count(e) == 0
                                            ? -1
                                            : placement.primary_gpu(e) / gpus_per_node;
  return std::make_shared<const SelectionLaw>(law.marginals(), node, max_nodes, law.top_k());
}

DestinationReach::DestinationReach(std::shared_ptr<const SelectionLaw> law, const LayerPlacement& placement,
                                   int gpus_per_node, ReplicaChoice choice, int max_nodes)
    : law_(max_nodes > 0 ? node_limited_law(*law, placement, gpus_per_node, max_nodes) : std::move(law)),
      placement_(placement), gpus_per_node_(gpus_per_node), choice_(choice), per_source_(false) {
  if (law_->experts() != placement.experts()) throw SimulationError("placement and selection law disagree on the expert count");
  if (choice == ReplicaChoice::nearest)
    for (int e = 0; e < placement.experts() && !per_source_; ++e) per_source_ = placement.replica_count(e) > 1;
}

const DestinationReach::Table& DestinationReach::of(int source, int group_base) {
  // Without per-source shares one table per EP group (its nodes may straddle node boundaries
  // differently from the next group's when ep is not a multiple of gpus_per_node).
  const std::pair<int, int> key{per_source_ ? source : -1, group_base};
  auto it = tables_.find(key);
  if (it == tables_.end()) it = tables_.emplace(key, make(per_source_ ? source : group_base, group_base)).first;
  return it->second;
}

DestinationReach::Table DestinationReach::make(int source, int group_base) const {
  const int ep = placement_.ep(), E = placement_.experts();
  const int first_node = group_base / gpus_per_node_;
  const int nodes = (group_base + ep - 1) / gpus_per_node_ - first_node + 1;
  std::vector<std::vector<Holding>> at_gpu(static_cast<std::size_t>(ep));
  std::vector<std::map<int, double>> at_node(static_cast<std::size_t>(nodes));
  std::vector<int> gpus;
  std::vector<double> shares;
  for (int e = 0; e < E; ++e) {
    replica_gpus(placement_, e, group_base, gpus);
    replica_fractions(choice_, gpus, source, gpus_per_node_, shares);
    std::map<int, double> per_gpu;  // replicas on one GPU pool their shares
    for (std::size_t i = 0; i < gpus.size(); ++i)
      if (shares[i] > 0) per_gpu[gpus[i] - group_base] += shares[i];
    for (const auto& [d, a] : per_gpu) {
      at_gpu[static_cast<std::size_t>(d)].push_back({e, a});
      at_node[static_cast<std::size_t>((group_base + d) / gpus_per_node_ - first_node)][e] += a;
    }
  }
  Table t;
  for (const auto& h : at_gpu) t.gpu.push_back(law_->distinct_per_copy(h));
  for (const auto& m : at_node) {
    std::vector<Holding> h;
    for (const auto& [e, a] : m) h.push_back({e, std::min(1.0, a)});
    t.node.push_back(law_->distinct_per_copy(h));
  }
  return t;
}

}  // namespace epsim
