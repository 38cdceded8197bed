// topology_aware: place experts so that the busiest link (by expected dispatch time, see
// LinkLoadModel) is as idle as possible, from the expected routing matrix.
//
// 1. Greedy affinity: (expert, node) pairs in decreasing order of the tokens the node's GPUs send
//    to the expert; an expert goes to the first node of its list with a free slot (this maximises
//    the traffic that stays on NVLink). Within a node, experts are dealt heaviest first to the
//    least loaded GPU with a free slot (LPT), which evens the GPUs' NIC downlinks and compute.
// 2. The best of {greedy, round_robin, contiguous} by the objective starts a first-improvement
//    local search over slot swaps: two in three swaps target the busiest link (a slot of its
//    receiving GPU, or an expert its sending GPU uses often, sampled in proportion to its demand,
//    brought onto that GPU's node), or a slot of the GPU that computes longest when that GPU is the
//    busiest resource; one in three is uniform. A swap is kept when it lowers the
//    busiest link's load, or keeps it and lowers the sum of squared link loads.
// Every GPU keeps the same number of slots, so memory per GPU equals the contiguous layout's.
#pragma once

#include <cstdint>
#include <string>

#include "placement/expected_routing.h"
#include "placement/layer_placement.h"
#include "placement/link_load_model.h"
#include "topology/cluster.h"

namespace epsim {

struct SearchOptions {
  int moves = 4000;         // swaps evaluated by the local search
  std::uint64_t seed = 1;
  Time compute_per_token;   // expert compute of one (token, expert) pair; zero: links only
};

struct SearchReport {
  std::string start;        // which layout the search started from
  LoadObjective greedy, initial, final;
  int moves = 0, accepted = 0;
};

LayerPlacement greedy_affinity_layout(const ExpectedRouting& routing, const Cluster& cluster, int ep);

LayerPlacement topology_aware_layout(const ExpectedRouting& routing, const Cluster& cluster, int ep, Bytes token_bytes,
                                     const SearchOptions& options, SearchReport* report = nullptr);

// Every distinct arrangement of `start`'s slot contents (at most 10! = 3,628,800; keep it to 8 slots
// or fewer for speed); returns the best by the same objective. For measuring the optimality gap.
LayerPlacement exhaustive_layout(const ExpectedRouting& routing, const Cluster& cluster, const LayerPlacement& start,
                                 Bytes token_bytes, Time compute_per_token = Time::zero());

}  // namespace epsim
