#include "placement/slot_traffic.h"

#include "models/apportion.h"
#include "models/errors.h"

namespace epsim {

std::int64_t SlotTraffic::slot_rows(int d, int j) const {
  std::int64_t n = 0;
  for (int s = 0; s < gpus; ++s) n += at(s, d, j);
  return n;
}

std::int64_t SlotTraffic::pieces(int g, int chunk, int chunks) const {
  auto nonempty = [&](std::int64_t n) { return equal_share(n, chunk, chunks) > 0 ? 1 : 0; };
  std::int64_t p = 0;  // self pieces (g to g) count in both loops: a send and a receive
  for (int d = 0; d < gpus; ++d)
    for (int j = 0; j < slots_per_gpu; ++j) p += nonempty(at(g, d, j));
  for (int s = 0; s < gpus; ++s)
    for (int j = 0; j < slots_per_gpu; ++j) p += nonempty(at(s, g, j));
  return p;
}

SlotTraffic slot_traffic(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node,
                         ReplicaChoice choice) {
  const int G = routing.sources, E = routing.experts, ep = placement.ep();
  if (placement.experts() != E) throw SimulationError("slot_traffic: placement and routing disagree on the expert count");
  if (G % ep != 0) throw SimulationError("slot_traffic: ep does not divide the source count");
  SlotTraffic t;
  t.gpus = G;
  t.slots_per_gpu = placement.slots_per_gpu();
  t.rows.assign(static_cast<std::size_t>(G) * static_cast<std::size_t>(G) * static_cast<std::size_t>(t.slots_per_gpu), 0);
  std::vector<int> rep_gpu;  // GPU of each replica (scratch)
  std::vector<std::int64_t> shares;
  for (int s = 0; s < G; ++s) {
    const int base = (s / ep) * ep;
    for (int e = 0; e < E; ++e) {
      const std::int64_t c = routing.at(s, e);
      if (c == 0) continue;
      const auto& reps = placement.replicas(e);
      replica_gpus(placement, e, base, rep_gpu);
      replica_shares(choice, c, rep_gpu, s, gpus_per_node, shares);
      for (std::size_t i = 0; i < reps.size(); ++i) {
        const int j = reps[i] % t.slots_per_gpu;
        t.rows[(static_cast<std::size_t>(s) * static_cast<std::size_t>(G) + static_cast<std::size_t>(rep_gpu[i])) *
                   static_cast<std::size_t>(t.slots_per_gpu) + static_cast<std::size_t>(j)] += shares[i];
      }
    }
  }
  return t;
}

}  // namespace epsim
