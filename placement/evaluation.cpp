#include "placement/evaluation.h"

#include <algorithm>
#include <numeric>

#include "placement/link_load_model.h"

namespace epsim {

PlacementEvaluation evaluate(const LayerPlacement& placement, const ExpectedRouting& routing, const Cluster& cluster,
                             Bytes token_bytes, Bytes expert_bytes, int moe_layers, ReplicaChoice choice) {
  const LinkLoadModel m(routing, cluster, placement, token_bytes, Time::zero(), choice);
  PlacementEvaluation r;
  r.max_tokens_link = m.most_tokens_link();
  r.max_link_tokens = m.link_tokens()[static_cast<std::size_t>(r.max_tokens_link)];
  r.max_link_bytes = Bytes(checked_int64(r.max_link_tokens * static_cast<double>(token_bytes.count()) + 0.5, "link tokens x token bytes -> Bytes"));
  r.busiest_link = m.busiest_link();
  r.max_link_ms = m.link_load(r.busiest_link) * 1e3;
  const int G = cluster.gpu_count();
  for (int s = 0; s < G; ++s)
    for (int d = 0; d < G; ++d)
      if (cluster.node_of(s) != cluster.node_of(d)) r.internode_tokens += m.unique(s, d);
  const auto& load = m.gpu_load();
  r.gpu_load_max = *std::max_element(load.begin(), load.end());
  r.gpu_load_mean = std::accumulate(load.begin(), load.end(), 0.0) / static_cast<double>(load.size());
  int fullest = 0;
  for (int g = 0; g < placement.ep(); ++g) {
    int used = 0;
    for (int p = g * placement.slots_per_gpu(); p < (g + 1) * placement.slots_per_gpu(); ++p) used += placement.expert_at(p) >= 0 ? 1 : 0;
    fullest = std::max(fullest, used);
  }
  r.expert_memory_per_gpu = expert_bytes * (static_cast<std::int64_t>(fullest) * moe_layers);
  return r;
}

std::vector<std::int64_t> dispatch_link_tokens(const DispatchMatrix& m, const Cluster& cluster) {
  std::vector<std::int64_t> tokens(cluster.links().size(), 0);
  for (int s = 0; s < m.gpus; ++s)
    for (int d = 0; d < m.gpus; ++d) {
      const std::int64_t u = m.unique_at(s, d);
      if (u == 0 || s == d) continue;
      for (LinkId l : cluster.route(s, d)) tokens[static_cast<std::size_t>(l)] += u;
    }
  return tokens;
}

PlacementEvaluation worst_of(const PlacementEvaluation& a, const PlacementEvaluation& b) {
  PlacementEvaluation r = a;
  if (b.max_link_tokens > a.max_link_tokens) {
    r.max_link_tokens = b.max_link_tokens;
    r.max_tokens_link = b.max_tokens_link;
    r.max_link_bytes = b.max_link_bytes;
  }
  if (b.max_link_ms > a.max_link_ms) {
    r.max_link_ms = b.max_link_ms;
    r.busiest_link = b.busiest_link;
  }
  r.internode_tokens = std::max(a.internode_tokens, b.internode_tokens);
  if (b.imbalance() > a.imbalance()) {
    r.gpu_load_max = b.gpu_load_max;
    r.gpu_load_mean = b.gpu_load_mean;
  }
  r.expert_memory_per_gpu = std::max(a.expert_memory_per_gpu, b.expert_memory_per_gpu);
  return r;
}

}  // namespace epsim
