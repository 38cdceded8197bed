#include "models/capacity_limit.h"

#include <cmath>
#include <numeric>

#include "models/apportion.h"
#include "models/units.h"

namespace epsim {

std::int64_t expert_capacity(std::int64_t total_selections, int experts, double factor) {
  return checked_int64(std::ceil(factor * static_cast<double>(total_selections) / static_cast<double>(experts) - 1e-9),
                       "capacity_factor x mean load -> selections");
}

void apply_capacity(RoutingSample& r, double factor) {
  const std::vector<std::int64_t> load = r.expert_load();
  const std::int64_t cap = expert_capacity(std::accumulate(load.begin(), load.end(), std::int64_t{0}), r.experts, factor);
  const std::size_t E = static_cast<std::size_t>(r.experts);
  for (std::size_t e = 0; e < E; ++e) {
    if (load[e] <= cap) continue;
    std::vector<double> share(static_cast<std::size_t>(r.sources));
    for (std::size_t s = 0; s < share.size(); ++s)
      share[s] = static_cast<double>(r.counts[s * E + e]) * static_cast<double>(cap) / static_cast<double>(load[e]);
    const std::vector<std::int64_t> kept = apportion(share, cap);
    for (std::size_t s = 0; s < share.size(); ++s) r.counts[s * E + e] = kept[s];
    r.dropped += load[e] - cap;
  }
}

}  // namespace epsim
