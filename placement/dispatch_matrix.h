// Token traffic of one MoE dispatch: from a routing sample and a layer's placement, what every GPU
// sends to every other GPU.
#pragma once

#include <cstdint>
#include <vector>

#include "models/gate_model.h"
#include "placement/destination_reach.h"
#include "placement/placement.h"
#include "placement/replica_choice.h"

namespace epsim {

struct DispatchMatrix {
  int gpus = 0;
  int gpus_per_node = 1;
  int first_gpu = 0;  // cluster id of its GPU 0 (a pipeline stage's first GPU); indices below are local
  std::vector<std::int64_t> copies;       // [src*gpus+dst]: (token, expert) pairs src routes to dst's experts
  std::vector<std::int64_t> unique;       // [src*gpus+dst]: distinct tokens src sends to dst
  std::vector<std::int64_t> node_unique;  // [src*nodes+node]: distinct tokens src sends to that node

  int nodes() const { return gpus / gpus_per_node; }
  std::int64_t copies_at(int s, int d) const { return copies[idx(s, d)]; }
  std::int64_t unique_at(int s, int d) const { return unique[idx(s, d)]; }
  std::int64_t received(int d) const;     // (token, expert) pairs GPU d computes
  std::size_t idx(int s, int d) const { return static_cast<std::size_t>(s) * static_cast<std::size_t>(gpus) + static_cast<std::size_t>(d); }
};

// Sources are all GPUs; GPU s belongs to EP group s / ep and sends to that group's experts. An
// expert with several replicas splits source s's tokens over them as `choice` says
// (replica_choice.h: integer shares). Distinct tokens per destination GPU and node: its copies times
// the distinct tokens per copy of the gate's joint selection law (routing.law: top_k distinct
// experts within the group limit; routing.max_nodes: within that many nodes), placement/
// destination_reach.h; exact for one expert per GPU (every copy is a distinct token).
DispatchMatrix build_dispatch(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node,
                              ReplicaChoice choice = ReplicaChoice::even);
// The same with the distinct-token tables of `reach`, which must be made from the sample's law and
// max_nodes with the same placement, gpus_per_node and choice (its tables are kept, so samples of
// one layer's law, e.g. its micro-batches, share them).
DispatchMatrix build_dispatch(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node,
                              ReplicaChoice choice, DestinationReach& reach);
// The same with a whole-model placement that has one table for every layer (Placement::uniform()),
// split by its replica_choice(); throws SimulationError for per-layer placements, which need the
// layer: pass placement.layer(l).
DispatchMatrix build_dispatch(const RoutingSample& routing, const Placement& placement, int gpus_per_node);

}  // namespace epsim
