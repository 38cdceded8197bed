// Token traffic of one MoE dispatch: from a routing sample and a layer's placement, what every GPU
// sends to every other GPU.
#pragma once

#include <cstdint>
#include <vector>

#include "models/gate_model.h"
#include "placement/placement.h"

namespace epsim {

struct DispatchMatrix {
  int gpus = 0;
  int gpus_per_node = 1;
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
// expert with r replicas splits source s's c tokens into r integer shares (c / r each, the c mod r
// extra tokens to the replicas starting at index s mod r, so that sources even them out).
// Distinct-token counts assume a token's expert choices are independent given the per-expert
// probabilities counts/tokens (exact for one expert per GPU).
DispatchMatrix build_dispatch(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node);
// The same with a whole-model placement that has one table for every layer (Placement::uniform());
// throws SimulationError for per-layer placements, which need the layer: pass placement.layer(l).
DispatchMatrix build_dispatch(const RoutingSample& routing, const Placement& placement, int gpus_per_node);

}  // namespace epsim
