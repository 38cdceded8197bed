// The cluster as a graph of GPUs, NVSwitches, leaf and spine switches and directed links, with the
// route between any two GPUs.
//
// Routing ("direct", as NCCL's all-to-all without PXN): same NVLink domain (the node, or a rack of
// nodes on one NVSwitch fabric: cluster.nvlink_domain) -> NVLink through the NVSwitch; other
// domain -> out of the source GPU's own NIC to its rail's leaf, across the spine when the
// destination's NIC hangs off another leaf, into the destination GPU's NIC. GPUs never forward.
// Routes are computed on demand by the builder's RouteRule (O(1), no all-pairs table); the
// fewest-hop search on the graph (Boost.Graph, inside cluster.cpp) finds the direct routes and is
// kept to check the rule. With topology rail_pxn, traffic between different rails of different
// nodes first crosses NVLink to the source node's GPU on the destination's rail (which forwards
// it), then that GPU's route. Kernel links (spec.kernel_rate > 0): one per GPU, outside the graph;
// a plan puts a GPU's kernel link first on the routes of the flows its communication kernels send.
//
// Faults (spec.link_factors, spec.failed_gpus): a degraded link runs at its factor of its bandwidth
// on the same routes; a failed link (factor 0) is crossed by no route. A pair whose route (direct,
// or rail_pxn's composed one) would cross a failed link takes a detour: the fewest-hop path over
// live links on which live GPUs may forward (over NVLink to a neighbour whose NIC works, PXN-style,
// or through the spine), ties broken by the search order (lower vertex ids first). Routes from and
// to failed GPUs are left empty: nothing is sent there. Only the detours are stored (found once,
// at construction, by checking every pair's rule route: O(G^2) time, only with failed links or GPUs).
#pragma once

#include <memory>
#include <vector>

#include "topology/cluster_spec.h"
#include "topology/link.h"
#include "topology/route_rule.h"

namespace epsim {

class Cluster {
 public:
  explicit Cluster(const ClusterSpec& spec);
  ~Cluster();
  Cluster(Cluster&&) noexcept;
  Cluster& operator=(Cluster&&) noexcept;

  const ClusterSpec& spec() const { return spec_; }
  int gpu_count() const { return spec_.gpu_count(); }
  int node_count() const { return spec_.nodes; }
  int gpus_per_node() const { return spec_.gpus_per_node; }
  int node_of(GpuId g) const { return g / spec_.gpus_per_node; }
  int rail_of(GpuId g) const { return g % spec_.gpus_per_node; }
  // NVLink domain of GPU g: GPUs [d x size, (d + 1) x size) share one NVSwitch fabric.
  int domain_of(GpuId g) const { return g / spec_.domain_size(); }
  int domain_size() const { return spec_.domain_size(); }
  bool same_domain(GpuId a, GpuId b) const { return domain_of(a) == domain_of(b); }
  int leaf_of(GpuId g) const;
  GpuId gpu(int node, int rail) const { return node * spec_.gpus_per_node + rail; }
  // A failed GPU (spec.failed_gpus) sends, receives and forwards nothing.
  bool failed(GpuId g) const { return failed_[static_cast<std::size_t>(g)] != 0; }

  const std::vector<Link>& links() const { return links_; }
  const Link& link(LinkId id) const { return links_[static_cast<std::size_t>(id)]; }
  // The direct route src -> dst (src != dst); empty route for src == dst.
  Route route(GpuId src, GpuId dst) const { return rule_->route(src, dst); }
  // The same, written into `out` (see RouteRule::route_into).
  void route_into(GpuId src, GpuId dst, Route& out) const { rule_->route_into(src, dst, out); }
  // The direct route found by a breadth-first search of the graph without GPU transit (O(graph)
  // per call: for checking the rule; topology rail rather than rail_pxn).
  Route searched_route(GpuId src, GpuId dst) const;
  // GPU g's kernel link, or -1 without kernel links.
  LinkId kernel_link(GpuId g) const { return kernel_links_.empty() ? -1 : kernel_links_[static_cast<std::size_t>(g)]; }

 private:
  struct Graph;
  void apply_link_factors();
  ClusterSpec spec_;
  std::vector<char> failed_;   // per GPU
  std::vector<Link> links_;
  std::unique_ptr<const RouteRule> rule_;
  std::unique_ptr<Graph> graph_;
  std::vector<LinkId> kernel_links_;  // per GPU (empty: none)
};

}  // namespace epsim
