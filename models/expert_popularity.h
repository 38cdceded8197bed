// How popular each routed expert of a layer is, before load balancing: the selection weights w_e
// that selection_marginals() turns into per-token probabilities.
//
// uniform / uniform-sampled: w_e = 1. zipf: the r-th expert of the layer's order has w = 1 / r^s.
// hot: the first hot_experts experts of the layer's order share hot_fraction of the total weight,
// the others share the rest. The order is a random permutation drawn from (seed, layer): each layer
// has its own hot experts, the same in every step (popularity is a property of the data, which is
// what lets load balancing learn it).
#pragma once

#include <vector>

#include "models/routing_spec.h"

namespace epsim {

std::vector<double> expert_popularity(const RoutingSpec& spec, int experts, int layer);

// The layer's random expert order: order[r] is the expert of popularity rank r (0 = most popular).
std::vector<int> popularity_order(std::uint64_t seed, int experts, int layer);

}  // namespace epsim
