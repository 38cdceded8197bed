#include "placement/topology_aware.h"

#include <algorithm>
#include <random>

#include "models/errors.h"
#include "placement/layouts.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }

// Portable uniform integer in [0, n).
int below(std::mt19937_64& rng, int n) {
  return static_cast<int>(((rng() >> 32) * static_cast<std::uint64_t>(n)) >> 32);
}

int group_gpus_per_node(const Cluster& cluster, int ep) {
  return ep % cluster.gpus_per_node() == 0 ? cluster.gpus_per_node() : ep;
}
}  // namespace

LayerPlacement greedy_affinity_layout(const ExpectedRouting& routing, const Cluster& cluster, int ep) {
  const int E = routing.experts;
  require_divides(E, ep);
  const int gpn = group_gpus_per_node(cluster, ep), nodes = ep / gpn, k = E / ep;
  // Demand of each node of the group (all EP groups folded onto one) for each expert.
  std::vector<double> demand(z(E) * z(nodes), 0.0);
  for (int s = 0; s < routing.sources; ++s) {
    const int n = (s % ep) / gpn;
    for (int e = 0; e < E; ++e) demand[z(e) * z(nodes) + z(n)] += routing.at(s, e);
  }
  std::vector<int> pairs(z(E) * z(nodes));
  for (std::size_t i = 0; i < pairs.size(); ++i) pairs[i] = static_cast<int>(i);
  std::stable_sort(pairs.begin(), pairs.end(), [&](int a, int b) { return demand[z(a)] > demand[z(b)]; });
  std::vector<int> node_of(z(E), -1), free_slots(z(nodes), gpn * k);
  for (int pr : pairs) {
    const int e = pr / nodes, n = pr % nodes;
    if (node_of[z(e)] >= 0 || free_slots[z(n)] == 0) continue;
    node_of[z(e)] = n;
    --free_slots[z(n)];
  }
  const std::vector<double> load = routing.expert_load();
  std::vector<int> order(z(E));
  for (int e = 0; e < E; ++e) order[z(e)] = e;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return load[z(a)] > load[z(b)]; });
  std::vector<double> gpu_load(z(ep), 0.0);
  std::vector<int> gpu_used(z(ep), 0), p(z(E), -1);
  for (int e : order) {
    const int n = node_of[z(e)];
    int best = -1;
    for (int g = n * gpn; g < (n + 1) * gpn; ++g)
      if (gpu_used[z(g)] < k && (best < 0 || gpu_load[z(g)] < gpu_load[z(best)])) best = g;
    p[z(best * k + gpu_used[z(best)])] = e;
    ++gpu_used[z(best)];
    gpu_load[z(best)] += load[z(e)];
  }
  return LayerPlacement(E, ep, std::move(p));
}

LayerPlacement topology_aware_layout(const ExpectedRouting& routing, const Cluster& cluster, int ep, Bytes token_bytes,
                                     const SearchOptions& options, SearchReport* report) {
  SearchReport rep;
  struct Candidate {
    const char* name;
    LayerPlacement layout;
  };
  std::vector<Candidate> candidates = {
      {"greedy", greedy_affinity_layout(routing, cluster, ep)},
      {"round_robin", round_robin_layout(routing.experts, ep, cluster.gpus_per_node())},
      {"contiguous", contiguous_layout(routing.experts, ep)},
  };
  std::size_t best = 0;
  LoadObjective best_obj;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const LoadObjective o = LinkLoadModel(routing, cluster, candidates[i].layout, token_bytes, options.compute_per_token).objective();
    if (i == 0) rep.greedy = o;
    if (i == 0 || o.better_than(best_obj)) best = i, best_obj = o;
  }
  rep.start = candidates[best].name;
  rep.initial = best_obj;
  LinkLoadModel model(routing, cluster, candidates[best].layout, token_bytes, options.compute_per_token);
  const LayerPlacement& pl = model.placement();
  const int slots = pl.slots(), spg = pl.slots_per_gpu(), gpn = group_gpus_per_node(cluster, ep);
  std::mt19937_64 rng(options.seed);
  LoadObjective cur = best_obj;
  std::vector<double> cumulative(z(routing.experts));
  for (int it = 0; it < options.moves && slots > 1; ++it) {
    int a = below(rng, slots), b = below(rng, slots);
    const int mode = below(rng, 3);
    const int hot_gpu = model.busiest_gpu();
    if (mode < 2 && model.gpu_time(hot_gpu) > model.link_load(model.busiest_link())) {
      a = (hot_gpu % ep) * spg + below(rng, spg);
    } else if (mode < 2) {
      const Link& link = cluster.link(model.busiest_link());
      const bool gpu_link = link.kind != LinkKind::LeafUp && link.kind != LinkKind::SpineDown;
      if (gpu_link) {
        const int g = link.owner, g_rel = g % ep;
        const bool receiving = link.kind == LinkKind::NicDown || link.kind == LinkKind::NvlinkDown;
        if (receiving) {
          a = g_rel * spg + below(rng, spg);
        } else {
          // An expert g sends to, sampled by demand; swap it onto g's node (NIC) or off it (NVLink).
          double sum = 0;
          for (int e = 0; e < routing.experts; ++e) cumulative[z(e)] = sum += routing.at(g, e);
          if (sum > 0) {
            const double r = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
            const int e = static_cast<int>(std::upper_bound(cumulative.begin(), cumulative.end(), r) - cumulative.begin());
            const auto& reps = pl.replicas(std::min(e, routing.experts - 1));
            a = reps[z(below(rng, static_cast<int>(reps.size())))];
            if (link.kind == LinkKind::NicUp) {
              const int node_first = (g_rel / gpn) * gpn;
              b = (node_first + below(rng, gpn)) * spg + below(rng, spg);
            }
          }
        }
      }
    }
    if (pl.gpu_of_slot(a) == pl.gpu_of_slot(b) || pl.expert_at(a) == pl.expert_at(b)) continue;
    ++rep.moves;
    model.swap_slots(a, b);
    const LoadObjective o = model.objective();
    if (o.better_than(cur)) {
      cur = o;
      ++rep.accepted;
    } else {
      model.swap_slots(a, b);
    }
  }
  rep.final = LinkLoadModel(routing, cluster, model.placement(), token_bytes, options.compute_per_token).objective();
  if (report) *report = rep;
  return model.placement();
}

LayerPlacement exhaustive_layout(const ExpectedRouting& routing, const Cluster& cluster, const LayerPlacement& start,
                                 Bytes token_bytes, Time compute_per_token) {
  if (start.slots() > 10) throw SimulationError("exhaustive_layout: more than 10 slots");
  std::vector<int> p = start.phy2log();
  std::sort(p.begin(), p.end());
  LayerPlacement best = start;
  LoadObjective best_obj = LinkLoadModel(routing, cluster, start, token_bytes, compute_per_token).objective();
  do {
    LayerPlacement cand(start.experts(), start.ep(), p);
    const LoadObjective o = LinkLoadModel(routing, cluster, cand, token_bytes, compute_per_token).objective();
    if (o.better_than(best_obj)) best = std::move(cand), best_obj = o;
  } while (std::next_permutation(p.begin(), p.end()));
  return best;
}

}  // namespace epsim
