// Distinct tokens per copy at each destination of a dispatch: of the (token, expert) copies a
// source sends to one GPU (or one node), how many are distinct tokens, from the gate's joint
// selection law (models/selection_law.h). A GPU holding one expert gets one copy per token that
// reaches it (ratio 1); a GPU or node holding several experts of one group gets fewer distinct
// tokens than copies, and how many fewer depends on how the law ties a token's experts together.
//
// A destination's holding of expert e is the share of a source's e-tokens that go there: 1 for an
// expert held only there, the replica_choice fractions (replica_choice.h) for replicated experts.
// Under `even` (or without replicas) the shares do not depend on the source, so one table serves
// every source; under `nearest` each source has its own shares and its own table.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "models/selection_law.h"
#include "placement/layer_placement.h"
#include "placement/replica_choice.h"

namespace epsim {

class DestinationReach {
 public:
  // `law` over the placement's experts; `max_nodes` > 0 replaces its groups by the placement's
  // nodes (node-limited routing, routing.max_nodes): a token's experts then lie on at most
  // max_nodes nodes of its EP group (a replicated expert counts at the node of its first replica).
  DestinationReach(std::shared_ptr<const SelectionLaw> law, const LayerPlacement& placement, int gpus_per_node,
                   ReplicaChoice choice, int max_nodes = 0);

  struct Table {
    std::vector<double> gpu;   // [GPU within the EP group]: distinct tokens per copy
    std::vector<double> node;  // [node - the node of the group's first GPU]
  };
  // The table of source `source` (a GPU id), whose EP group starts at GPU `group_base`.
  const Table& of(int source, int group_base);
  const SelectionLaw& law() const { return *law_; }

 private:
  Table make(int source, int group_base) const;
  std::shared_ptr<const SelectionLaw> law_;
  const LayerPlacement& placement_;
  int gpus_per_node_;
  ReplicaChoice choice_;
  bool per_source_;  // shares depend on the source (nearest with replicas)
  std::map<std::pair<int, int>, Table> tables_;  // by (source or -1, group base)
};

// The law with groups = the nodes of an EP group holding each expert (at most `max_nodes` used),
// fitted to `law`'s marginals; always-chosen experts (marginal 1) stay outside the limit.
std::shared_ptr<const SelectionLaw> node_limited_law(const SelectionLaw& law, const LayerPlacement& placement,
                                                     int gpus_per_node, int max_nodes);

}  // namespace epsim
