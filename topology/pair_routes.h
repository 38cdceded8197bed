// The routes between every ordered pair of a span of GPUs, listed pair by pair in one array: for
// code that walks all pairs many times (sim/pair_traffic.h walks them once per chunk of every
// all-to-all), so the rule is asked once per pair instead of once per pair and walk. Memory: about
// 4 bytes per link crossed plus 2 per pair (a 256-GPU span: about 1.3 MB), the order of a
// GPUs x GPUs token matrix's.
#pragma once

#include <cstdint>
#include <vector>

#include "topology/cluster.h"

namespace epsim {

class PairRoutes {
 public:
  // Pairs (s, d) of local ids in [0, gpus), s-major; the route of pair (s, d) is the cluster's route
  // from first + s to first + d, or with `reverse` from first + d to first + s.
  PairRoutes(const Cluster& cluster, int first_gpu, int gpus, bool reverse);

  int first_gpu() const { return first_; }
  int gpus() const { return gpus_; }
  bool reverse() const { return reverse_; }
  // Per pair [s * gpus + d]: how many links its route crosses and the index of its latency.
  struct Pair {
    std::uint8_t hops = 0;
    std::uint8_t latency = 0;
  };
  const std::vector<Pair>& pairs() const { return pairs_; }
  // The pairs' links, one route after the other in pair order.
  const std::vector<LinkId>& links() const { return links_; }
  const std::vector<Time>& latencies() const { return latencies_; }  // distinct, by index

 private:
  int first_, gpus_;
  bool reverse_;
  std::vector<Pair> pairs_;
  std::vector<LinkId> links_;
  std::vector<Time> latencies_;
};

}  // namespace epsim
