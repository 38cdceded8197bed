#include "placement/layouts.h"

#include <numeric>
#include <random>
#include <string>

#include "models/errors.h"

namespace epsim {

namespace {
std::size_t z(int i) { return static_cast<std::size_t>(i); }
}  // namespace

void require_divides(int experts, int ep) {
  if (ep < 1 || experts % ep != 0)
    throw ConfigError("parallelism.ep", std::to_string(ep), "must divide the routed experts " + std::to_string(experts) + " (routed shared experts included; eplb with placement.redundant_slots fills the slots)");
}

LayerPlacement contiguous_layout(int experts, int ep) {
  require_divides(experts, ep);
  std::vector<int> p(z(experts));
  std::iota(p.begin(), p.end(), 0);
  return LayerPlacement(experts, ep, std::move(p));
}

LayerPlacement round_robin_layout(int experts, int ep, int gpus_per_node) {
  require_divides(experts, ep);
  const int gpn = ep % gpus_per_node == 0 ? gpus_per_node : ep;  // an EP group inside one node: one "node"
  const int nodes = ep / gpn, k = experts / ep;
  std::vector<int> p(z(experts));
  for (int e = 0; e < experts; ++e) {
    const int node = e % nodes, local = (e / nodes) % gpn, round = e / (nodes * gpn);
    p[z((node * gpn + local) * k + round)] = e;
  }
  return LayerPlacement(experts, ep, std::move(p));
}

LayerPlacement random_layout(int experts, int ep, std::uint64_t seed) {
  require_divides(experts, ep);
  std::vector<int> p(z(experts));
  std::iota(p.begin(), p.end(), 0);
  std::mt19937_64 rng(seed);  // the generator's output is fixed by the standard; the mapping below is ours
  for (int i = experts - 1; i > 0; --i) {
    const auto j = static_cast<int>(((rng() >> 32) * static_cast<std::uint64_t>(i + 1)) >> 32);
    std::swap(p[z(i)], p[z(j)]);
  }
  return LayerPlacement(experts, ep, std::move(p));
}

LayerPlacement colocated_layout(const ExpectedRouting& routing, int ep, int k) {
  const int E = routing.experts;
  if (k == 0) {
    require_divides(E, ep);
    k = E / ep;
  }
  if (k < 1 || static_cast<long>(k) * ep < E)
    throw ConfigError("placement.colocate", std::to_string(k),
                      "k experts per GPU x ep = " + std::to_string(ep) + " GPUs must hold all " + std::to_string(E) + " experts");
  // Co-selection estimate and loads.
  std::vector<double> co(z(E) * z(E), 0.0);
  const std::vector<double> load = routing.expert_load();
  for (int s = 0; s < routing.sources; ++s) {
    const double T = routing.tokens[z(s)];
    if (!(T > 0)) continue;
    for (int e = 0; e < E; ++e) {
      const double pe = routing.at(s, e);
      if (pe == 0) continue;
      for (int f = 0; f < E; ++f) co[z(e) * z(E) + z(f)] += pe * routing.at(s, f) / T;
    }
  }
  std::vector<int> p(z(k) * z(ep), -1);
  std::vector<bool> placed(z(E), false);
  int remaining = E;
  for (int g = 0; remaining > 0; ++g) {
    std::vector<int> members;
    int seed = -1;
    for (int e = 0; e < E; ++e)
      if (!placed[z(e)] && (seed < 0 || load[z(e)] > load[z(seed)])) seed = e;
    members.push_back(seed);
    placed[z(seed)] = true;
    --remaining;
    while (static_cast<int>(members.size()) < k && remaining > 0) {
      int best = -1;
      double best_score = -1;
      for (int f = 0; f < E; ++f) {
        if (placed[z(f)]) continue;
        double score = 0;
        for (int m : members) score += co[z(m) * z(E) + z(f)];
        if (score > best_score) best = f, best_score = score;
      }
      members.push_back(best);
      placed[z(best)] = true;
      --remaining;
    }
    for (std::size_t i = 0; i < members.size(); ++i) p[z(g) * z(k) + i] = members[i];
  }
  return LayerPlacement(E, ep, std::move(p));
}

}  // namespace epsim
