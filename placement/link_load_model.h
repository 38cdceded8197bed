// Expected dispatch traffic of one layer's placement on the cluster's links, without simulating:
// the distinct tokens every source GPU sends to every GPU of its EP group, summed over the links of
// the direct route (Cluster::route). Incremental: swapping two slots updates only the two GPUs'
// columns, so a local search can evaluate thousands of moves per second.
//
// Distinct tokens: a token of source s reaches GPU d unless it selects none of d's replicas; with
// p = c[s][e] / T[s] the chance that it selects expert e, and f the fraction of s's tokens for e
// that d's replicas take (replica_choice.h: (replicas of e on d) / r under `even`), it misses d with
// probability prod_e (1 - p * f), expert choices taken as independent given the source (as
// build_dispatch does).
//
// Load of a link = expected tokens x token bytes / link bandwidth (seconds): NVLink, NIC and spine
// links are compared by the time they are busy. With `compute_per_token` > 0 every GPU is one more
// resource, busy (token, expert) pairs x compute_per_token: without it, colocating hot experts
// (whose tokens then cross a link once) would win at the cost of a GPU computing far longer than
// the rest. The objective of topology_aware is the largest of these loads; ties are broken by the
// sum of squares, which rewards thinning every hot resource.
#pragma once

#include <vector>

#include "models/units.h"
#include "placement/expected_routing.h"
#include "placement/layer_placement.h"
#include "placement/replica_choice.h"
#include "topology/cluster.h"

namespace epsim {

struct LoadObjective {
  double max_load = 0;  // seconds on the busiest link
  double sum_sq = 0;
  // Better by more than a relative epsilon on the max, or equal max and a smaller sum of squares.
  bool better_than(const LoadObjective& o) const;
};

class LinkLoadModel {
 public:
  // routing.sources must equal the cluster's GPU count; placement.ep must divide it.
  LinkLoadModel(const ExpectedRouting& routing, const Cluster& cluster, LayerPlacement placement, Bytes token_bytes,
                Time compute_per_token = Time::zero(), ReplicaChoice choice = ReplicaChoice::even);

  const LayerPlacement& placement() const { return placement_; }
  const std::vector<double>& link_tokens() const { return link_tokens_; }
  double link_load(LinkId l) const { return link_tokens_[static_cast<std::size_t>(l)] * seconds_per_token_[static_cast<std::size_t>(l)]; }
  LinkId busiest_link() const;           // by load (time); ties: lowest id
  LinkId most_tokens_link() const;       // by tokens; ties: lowest id
  LoadObjective objective() const;
  // Seconds of expert compute on GPU g (0 without compute_per_token); the GPU with the most.
  double gpu_time(int g) const { return gpu_load_[static_cast<std::size_t>(g)] * compute_per_token_; }
  int busiest_gpu() const;
  // Expected (token, expert) pairs each GPU computes, [gpu].
  const std::vector<double>& gpu_load() const { return gpu_load_; }
  // Expected distinct tokens src sends to dst (0 outside src's EP group).
  double unique(int src, int dst) const;
  // Exchanges two slots of the table (applied in every EP group) and updates the loads.
  void swap_slots(int a, int b);

 private:
  // Expected distinct tokens s sends to GPU d_rel; adds the (token, expert) pairs they carry to `pairs`.
  double distinct(int s, int d_rel, double& pairs) const;
  double share_on(int s, int e, int d_rel) const;  // fraction of s's tokens for e that GPU d_rel's replicas take
  void update_gpu(int d_rel);
  const ExpectedRouting& routing_;
  const Cluster& cluster_;
  LayerPlacement placement_;
  int gpus_, ep_;
  std::vector<double> seconds_per_token_;  // per link
  std::vector<double> link_tokens_;        // per link
  std::vector<double> unique_;             // [s * ep + d_rel]
  std::vector<double> gpu_load_;
  double compute_per_token_ = 0;
  ReplicaChoice choice_ = ReplicaChoice::even;
  mutable std::vector<int> rep_gpu_;    // share_on scratch
  mutable std::vector<double> rep_frac_;
};

}  // namespace epsim
