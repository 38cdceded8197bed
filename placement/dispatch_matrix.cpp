#include "placement/dispatch_matrix.h"

#include <algorithm>
#include <cmath>

#include "models/errors.h"
#include "models/selection_marginals.h"
#include "placement/destination_reach.h"

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

namespace {
// The sample's own law, or (a hand-made sample without one) the law of its pooled loads without a
// group limit: every source's tokens choose as the whole layer's did.
std::shared_ptr<const SelectionLaw> law_of(const RoutingSample& routing) {
  if (routing.law) return routing.law;
  std::vector<double> p(static_cast<std::size_t>(routing.experts), 0.0);
  std::int64_t tokens = 0, picks = 0;
  for (int s = 0; s < routing.sources; ++s) tokens += routing.tokens[static_cast<std::size_t>(s)];
  for (int s = 0; s < routing.sources; ++s)
    for (int e = 0; e < routing.experts; ++e) {
      p[static_cast<std::size_t>(e)] += static_cast<double>(routing.at(s, e));
      picks += routing.at(s, e);
    }
  if (tokens == 0 || picks == 0) return std::make_shared<const SelectionLaw>(SelectionLaw::uniform(routing.experts, 1));
  const int k = static_cast<int>(std::max<std::int64_t>(1, (picks + tokens / 2) / tokens));
  // Pooled loads as marginals summing to k, none above 1 (water-filling, as the gate caps them).
  const std::vector<double> marginals = water_fill(p, std::vector<double>(p.size(), 1.0), k);
  return std::make_shared<const SelectionLaw>(marginals, std::vector<int>(p.size(), 0), 1, k);
}

// copies x distinct-per-copy, rounded, within [1 if any copy, min(copies, tokens)].
std::int64_t distinct(std::int64_t copies, double per_copy, std::int64_t tokens) {
  if (copies <= 0) return 0;
  const auto v = std::llround(static_cast<double>(copies) * per_copy);
  return std::clamp<std::int64_t>(v, 1, std::min(copies, tokens));
}
}  // namespace

DispatchMatrix build_dispatch(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node,
                              ReplicaChoice choice) {
  DestinationReach reach(law_of(routing), placement, gpus_per_node, choice, routing.max_nodes);
  return build_dispatch(routing, placement, gpus_per_node, choice, reach);
}

DispatchMatrix build_dispatch(const RoutingSample& routing, const LayerPlacement& placement, int gpus_per_node,
                              ReplicaChoice choice, DestinationReach& reach) {
  const int G = routing.sources, E = routing.experts, ep = placement.ep();
  if (placement.experts() != E) throw SimulationError("placement and routing disagree on the expert count");
  if (G % ep != 0) throw SimulationError("build_dispatch: ep does not divide the source count");
  DispatchMatrix m;
  m.gpus = G;
  m.gpus_per_node = gpus_per_node;
  const int nodes = m.nodes();
  const auto GG = static_cast<std::size_t>(G) * static_cast<std::size_t>(G);
  m.copies.assign(GG, 0);
  m.unique.assign(GG, 0);
  m.node_unique.assign(static_cast<std::size_t>(G) * static_cast<std::size_t>(nodes), 0);
  std::vector<std::int64_t> node_copies(static_cast<std::size_t>(nodes));
  std::vector<int> rep_gpu;                                            // GPU of each replica (scratch)
  std::vector<std::int64_t> shares;
  for (int s = 0; s < G; ++s) {
    const int base = (s / ep) * ep;
    const std::int64_t T = routing.tokens[static_cast<std::size_t>(s)];
    for (int e = 0; e < E; ++e) {
      const std::int64_t c = routing.at(s, e);
      if (c == 0) continue;
      if (const std::vector<int>& slots = placement.replicas(e); slots.size() == 1) {
        // One replica takes them all, whatever the choice (replica_shares with one replica).
        m.copies[m.idx(s, base + placement.gpu_of_slot(slots.front()))] += c;
        continue;
      }
      replica_gpus(placement, e, base, rep_gpu);
      replica_shares(choice, c, rep_gpu, s, gpus_per_node, shares);
      for (std::size_t i = 0; i < rep_gpu.size(); ++i) m.copies[m.idx(s, rep_gpu[i])] += shares[i];
    }
    // Distinct tokens: the copies times the law's distinct tokens per copy at that destination.
    const DestinationReach::Table& t = reach.of(s, base);
    const int first_node = base / gpus_per_node;
    std::fill(node_copies.begin(), node_copies.end(), 0);
    for (int d = base; d < base + ep; ++d) {
      const std::int64_t c = m.copies[m.idx(s, d)];
      m.unique[m.idx(s, d)] = distinct(c, t.gpu[static_cast<std::size_t>(d - base)], T);
      node_copies[static_cast<std::size_t>(d / gpus_per_node)] += c;
    }
    for (int n = first_node; n <= (base + ep - 1) / gpus_per_node; ++n) {
      // Between the most a single GPU of the node gets and what its GPUs get together.
      std::int64_t most = 0, sum = 0;
      for (int d = std::max(base, n * gpus_per_node); d < std::min(base + ep, (n + 1) * gpus_per_node); ++d) {
        most = std::max(most, m.unique[m.idx(s, d)]);
        sum += m.unique[m.idx(s, d)];
      }
      const std::int64_t u = distinct(node_copies[static_cast<std::size_t>(n)], t.node[static_cast<std::size_t>(n - first_node)], T);
      m.node_unique[static_cast<std::size_t>(s) * static_cast<std::size_t>(nodes) + static_cast<std::size_t>(n)] =
          std::clamp(u, most, std::max(most, sum));
    }
  }
  return m;
}

}  // namespace epsim
