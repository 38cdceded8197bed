#include "topology/pair_routes.h"

#include <algorithm>

#include "models/errors.h"

namespace epsim {

PairRoutes::PairRoutes(const Cluster& cluster, int first_gpu, int gpus, bool reverse)
    : first_(first_gpu), gpus_(gpus), reverse_(reverse) {
  if (first_ < 0 || gpus_ < 0 || first_ + gpus_ > cluster.gpu_count()) throw SimulationError("pair routes: span outside the cluster");
  const auto G = static_cast<std::size_t>(gpus_);
  pairs_.resize(G * G);
  links_.reserve(G * G * 4);
  Route route;
  std::size_t pair = 0;
  for (GpuId s = 0; s < gpus_; ++s)
    for (GpuId d = 0; d < gpus_; ++d, ++pair) {
      cluster.route_into(first_ + (reverse_ ? d : s), first_ + (reverse_ ? s : d), route);
      auto at = std::find(latencies_.begin(), latencies_.end(), route.latency);
      if (at == latencies_.end()) {
        if (latencies_.size() == 256) throw SimulationError("pair routes: more than 256 distinct route latencies");
        at = latencies_.insert(latencies_.end(), route.latency);
      }
      pairs_[pair] = {route.hops, static_cast<std::uint8_t>(at - latencies_.begin())};
      links_.insert(links_.end(), route.begin(), route.end());
    }
}

}  // namespace epsim
