// Rows each source GPU sends to each physical expert slot of its EP group in one MoE dispatch: the
// per-(source, expert) pieces an implementation moves one by one (an NCCL send/recv each) and the
// tokens each expert slot computes. Replicas split a source's tokens as build_dispatch does.
#pragma once

#include <cstdint>
#include <vector>

#include "models/routing_sample.h"
#include "placement/layer_placement.h"
#include "placement/replica_choice.h"

namespace epsim {

struct SlotTraffic {
  int gpus = 0;
  int slots_per_gpu = 0;
  std::vector<std::int64_t> rows;  // [(src * gpus + dst) * slots_per_gpu + j]: src -> slot j of GPU dst

  std::int64_t at(int src, int dst, int j) const {
    return rows[(static_cast<std::size_t>(src) * static_cast<std::size_t>(gpus) + static_cast<std::size_t>(dst)) *
                    static_cast<std::size_t>(slots_per_gpu) + static_cast<std::size_t>(j)];
  }
  // Rows slot j of GPU d computes, over all sources.
  std::int64_t slot_rows(int d, int j) const;
  // Non-empty pieces GPU g sends plus receives when every (src, slot) count n is cut into `chunks`
  // shares (n / chunks, the first n % chunks one more) and this is share `chunk`.
  std::int64_t pieces(int g, int chunk, int chunks) const;
};

SlotTraffic slot_traffic(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node,
                         ReplicaChoice choice = ReplicaChoice::even);

}  // namespace epsim
