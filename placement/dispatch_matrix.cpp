#include "placement/dispatch_matrix.h"

#include <algorithm>
#include <cmath>

#include "models/errors.h"

namespace epsim {

std::int64_t DispatchMatrix::received(int d) const {
  std::int64_t sum = 0;
  for (int s = 0; s < gpus; ++s) sum += copies[idx(s, d)];
  return sum;
}

DispatchMatrix build_dispatch(const RoutingSample& routing, const Placement& placement, int gpus_per_node) {
  if (!placement.uniform())
    throw SimulationError("build_dispatch: placement '" + placement.strategy() + "' differs per layer; pass placement.layer(l)");
  return build_dispatch(routing, placement.tables().front(), gpus_per_node, placement.replica_choice());
}

DispatchMatrix build_dispatch(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node,
                              ReplicaChoice choice) {
  const int G = routing.sources, E = routing.experts, ep = placement.ep();
  if (placement.experts() != E) throw SimulationError("placement and routing disagree on the expert count");
  if (G % ep != 0) throw SimulationError("build_dispatch: ep does not divide the source count");
  DispatchMatrix m;
  m.gpus = G;
  m.gpus_per_node = gpus_per_node;
  const auto GG = static_cast<std::size_t>(G) * static_cast<std::size_t>(G);
  m.copies.assign(GG, 0);
  m.unique.assign(GG, 0);
  m.node_unique.assign(static_cast<std::size_t>(G) * static_cast<std::size_t>(m.nodes()), 0);
  std::vector<double> miss_gpu(static_cast<std::size_t>(G)), miss_node(static_cast<std::size_t>(m.nodes()));
  std::vector<std::int64_t> to_gpu(static_cast<std::size_t>(G), 0);  // this expert's share per GPU (scratch)
  std::vector<int> rep_gpu;                                            // GPU of each replica (scratch)
  std::vector<std::int64_t> shares;
  for (int s = 0; s < G; ++s) {
    const int base = (s / ep) * ep;
    const double T = static_cast<double>(routing.tokens[static_cast<std::size_t>(s)]);
    std::fill(miss_gpu.begin(), miss_gpu.end(), 1.0);
    std::fill(miss_node.begin(), miss_node.end(), 1.0);
    for (int e = 0; e < E; ++e) {
      const std::int64_t c = routing.at(s, e);
      if (c == 0) continue;
      replica_gpus(placement, e, base, rep_gpu);
      replica_shares(choice, c, rep_gpu, s, gpus_per_node, shares);
      for (std::size_t i = 0; i < rep_gpu.size(); ++i) to_gpu[static_cast<std::size_t>(rep_gpu[i])] += shares[i];
      // Replicas on one GPU (or node) share a token's send: combine their shares before the miss.
      for (int d : rep_gpu) {
        std::int64_t& share = to_gpu[static_cast<std::size_t>(d)];
        if (share == 0) continue;
        m.copies[m.idx(s, d)] += share;
        const double p_miss = 1.0 - std::min(1.0, static_cast<double>(share) / T);
        miss_gpu[static_cast<std::size_t>(d)] *= p_miss;
        miss_node[static_cast<std::size_t>(d / gpus_per_node)] *= p_miss;
        share = 0;
      }
    }
    for (int d = base; d < base + ep; ++d)
      m.unique[m.idx(s, d)] = std::llround(T * (1.0 - miss_gpu[static_cast<std::size_t>(d)]));
    for (int n = 0; n < m.nodes(); ++n)
      m.node_unique[static_cast<std::size_t>(s) * static_cast<std::size_t>(m.nodes()) + static_cast<std::size_t>(n)] =
          std::llround(T * (1.0 - miss_node[static_cast<std::size_t>(n)]));
  }
  return m;
}

}  // namespace epsim
