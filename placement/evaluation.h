// A placement judged without simulation: expected dispatch tokens and bytes per link, the busiest
// link, per-GPU expert load and expert memory per GPU (one layer, or the worst over layers).
#pragma once

#include <string>
#include <vector>

#include "models/units.h"
#include "placement/dispatch_matrix.h"
#include "placement/expected_routing.h"
#include "placement/layer_placement.h"
#include "placement/replica_choice.h"
#include "topology/cluster.h"

namespace epsim {

struct PlacementEvaluation {
  double max_link_tokens = 0;     // expected tokens on the link that carries the most
  LinkId max_tokens_link = -1;
  Bytes max_link_bytes;
  double max_link_ms = 0;         // the busiest link by time (tokens x bytes / bandwidth)
  LinkId busiest_link = -1;
  double internode_tokens = 0;    // expected tokens leaving their node, summed over sources
  double gpu_load_max = 0;        // expected (token, expert) pairs on the busiest GPU
  double gpu_load_mean = 0;
  Bytes expert_memory_per_gpu;    // routed-expert weights of the fullest GPU, all MoE layers
  double imbalance() const { return gpu_load_mean > 0 ? gpu_load_max / gpu_load_mean : 0.0; }
};

// `expert_bytes`: weights of one expert in one layer; `moe_layers` multiplies the memory; `choice`:
// how sources split over replicas.
PlacementEvaluation evaluate(const LayerPlacement& placement, const ExpectedRouting& routing, const Cluster& cluster,
                             Bytes token_bytes, Bytes expert_bytes, int moe_layers, ReplicaChoice choice = ReplicaChoice::even);

// Distinct tokens each link carries in one simulated dispatch (DispatchMatrix::unique on the direct
// routes), per link id.
std::vector<std::int64_t> dispatch_link_tokens(const DispatchMatrix& m, const Cluster& cluster);

// The worse of two evaluations, figure by figure (for the worst layer of a step).
PlacementEvaluation worst_of(const PlacementEvaluation& a, const PlacementEvaluation& b);

}  // namespace epsim
