// The placement strategies that need no routing statistics, as one layer's table (every layer gets
// the same), plus `colocated`, which groups experts that the same tokens select.
//
// contiguous:  expert e in slot e: experts 0..k-1 on the group's first GPU, and so on.
// round_robin: experts dealt across nodes first: e on node e mod N, then across the node's GPUs,
//              so consecutive experts (one expert group) land on different nodes.
// random:      a uniformly random permutation of the slots (seeded, portable generator).
// colocated:   k experts per GPU on the first ceil(E / k) GPUs (the rest of the k x ep slots stay
//              empty); each GPU is seeded with the heaviest unplaced expert and filled with the
//              unplaced experts most often selected by the same tokens as its members
//              (sum over sources of T x p_e x p_f, the independent co-selection estimate).
#pragma once

#include <cstdint>

#include "placement/expected_routing.h"
#include "placement/layer_placement.h"

namespace epsim {

// Throws ConfigError naming parallelism.ep unless ep >= 1 divides the experts (one per slot).
void require_divides(int experts, int ep);

LayerPlacement contiguous_layout(int experts, int ep);
LayerPlacement round_robin_layout(int experts, int ep, int gpus_per_node);
LayerPlacement random_layout(int experts, int ep, std::uint64_t seed);
// k = 0 means experts / ep. Requires k x ep >= experts.
LayerPlacement colocated_layout(const ExpectedRouting& routing, int ep, int k);

}  // namespace epsim
