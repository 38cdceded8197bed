#include "sim/comm_scheme.h"

#include <stdexcept>

#include "models/errors.h"

namespace epsim {

CommScheme comm_scheme_from_string(const std::string& name) {
  if (name == "direct") return CommScheme::Direct;
  if (name == "hierarchical") return CommScheme::Hierarchical;
  if (name == "per-token") return CommScheme::PerToken;
  throw std::out_of_range(name);
}

std::vector<std::string> comm_scheme_names() { return {"direct", "hierarchical", "per-token"}; }

void CommPlan::add(const Cluster& cluster, GpuId from, GpuId to, Bytes bytes) {
  if (bytes.count() <= 0 || from == to) return;
  FlowSpec& f = flows.emplace_back();
  cluster.route_into(from, to, f.route);  // in place: see RouteRule::route_into
  f.bytes = bytes;
  src.push_back(from);
  dst.push_back(to);
}

namespace {
// One flow per (src, dst) pair carrying count(s, d) tokens (reversed for the combine).
CommPlan pairwise(const Cluster& cluster, const DispatchMatrix& m, const std::vector<std::int64_t>& count,
                  Bytes token_bytes, bool reverse) {
  CommPlan plan;
  const auto pairs = static_cast<std::size_t>(m.gpus) * static_cast<std::size_t>(m.gpus);
  plan.flows.reserve(pairs);
  plan.src.reserve(pairs);
  plan.dst.reserve(pairs);
  const int o = m.first_gpu;
  for (int s = 0; s < m.gpus; ++s)
    for (int d = 0; d < m.gpus; ++d) {
      const Bytes b = token_bytes * count[m.idx(s, d)];
      if (reverse) plan.add(cluster, o + d, o + s, b);
      else plan.add(cluster, o + s, o + d, b);
    }
  return plan;
}
// direct: the distinct tokens of each pair.
CommPlan direct(const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes, bool reverse) {
  return pairwise(cluster, m, m.unique, token_bytes, reverse);
}
// per-token: every (token, expert) copy, no deduplication.
CommPlan per_token(const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes, bool reverse) {
  return pairwise(cluster, m, m.copies, token_bytes, reverse);
}

// IB once per (source, remote node) to the same-rail relay, then NVLink from the relay.
CommPlan hierarchical(const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes, bool reverse) {
  const int G = m.gpus;
  const int gpn = m.gpus_per_node;
  const int o = m.first_gpu;  // a pipeline stage of whole nodes: its local ids keep the node layout
  if (gpn != cluster.gpus_per_node() || o % gpn != 0 || o + G > cluster.gpu_count())
    throw SimulationError("hierarchical scheme: dispatch matrix and cluster disagree on the GPU layout");
  const int nodes = m.nodes();
  // NVLink tokens per (from, to) pair on one node: own intra-node traffic plus what is forwarded.
  std::vector<std::int64_t> nvlink(static_cast<std::size_t>(G) * static_cast<std::size_t>(gpn), 0);
  auto nv = [&](GpuId from, GpuId to) -> std::int64_t& {
    return nvlink[static_cast<std::size_t>(from) * static_cast<std::size_t>(gpn) + static_cast<std::size_t>(to % gpn)];
  };
  CommPlan plan;
  auto add = [&](GpuId from, GpuId to, std::int64_t tokens) {
    if (reverse) plan.add(cluster, o + to, o + from, token_bytes * tokens);
    else plan.add(cluster, o + from, o + to, token_bytes * tokens);
  };
  for (GpuId s = 0; s < G; ++s) {
    const int home = s / gpn;
    for (int node = 0; node < nodes; ++node) {
      if (node == home) {
        for (int r = 0; r < gpn; ++r) {
          const GpuId d = node * gpn + r;
          if (d != s) nv(s, d) += m.unique_at(s, d);
        }
        continue;
      }
      // The node's GPU on the source's rail, or the next live one when it is down.
      GpuId relay = node * gpn + s % gpn;
      for (int k = 1; k < gpn && cluster.failed(relay); ++k) relay = node * gpn + (s + k) % gpn;
      add(s, relay, m.node_unique[static_cast<std::size_t>(s) * static_cast<std::size_t>(nodes) + static_cast<std::size_t>(node)]);
      for (int r = 0; r < gpn; ++r) {
        const GpuId d = node * gpn + r;
        if (d != relay) nv(relay, d) += m.unique_at(s, d);
      }
    }
  }
  for (GpuId from = 0; from < G; ++from)
    for (int r = 0; r < gpn; ++r) {
      const GpuId to = (from / gpn) * gpn + r;
      if (to != from) add(from, to, nv(from, to));
    }
  return plan;
}

}  // namespace

CommPlan dispatch_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes) {
  switch (scheme) {
    case CommScheme::Direct: return direct(cluster, m, token_bytes, false);
    case CommScheme::Hierarchical: return hierarchical(cluster, m, token_bytes, false);
    case CommScheme::PerToken: return per_token(cluster, m, token_bytes, false);
  }
  return {};
}

CommPlan combine_plan(CommScheme scheme, const Cluster& cluster, const DispatchMatrix& m, Bytes token_bytes) {
  switch (scheme) {
    case CommScheme::Direct: return direct(cluster, m, token_bytes, true);
    case CommScheme::Hierarchical: return hierarchical(cluster, m, token_bytes, true);
    case CommScheme::PerToken: return per_token(cluster, m, token_bytes, true);
  }
  return {};
}

}  // namespace epsim
