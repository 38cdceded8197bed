#include "models/routing_sample.h"

#include <algorithm>
#include <numeric>

namespace epsim {

std::vector<std::int64_t> RoutingSample::expert_load() const {
  std::vector<std::int64_t> load(static_cast<std::size_t>(experts), 0);
  for (int s = 0; s < sources; ++s)
    for (int e = 0; e < experts; ++e) load[static_cast<std::size_t>(e)] += at(s, e);
  return load;
}

double RoutingSample::imbalance() const { return max_over_mean(expert_load()); }

double max_over_mean(const std::vector<std::int64_t>& load) {
  const std::int64_t total = std::accumulate(load.begin(), load.end(), std::int64_t{0});
  if (load.empty() || total == 0) return 1.0;
  const std::int64_t mx = *std::max_element(load.begin(), load.end());
  return static_cast<double>(mx) * static_cast<double>(load.size()) / static_cast<double>(total);
}

RoutingSample with_always_chosen(const RoutingSample& r, int extra) {
  RoutingSample out = r;
  out.experts = r.experts + extra;
  out.counts.assign(static_cast<std::size_t>(r.sources) * static_cast<std::size_t>(out.experts), 0);
  for (int s = 0; s < r.sources; ++s)
    for (int e = 0; e < out.experts; ++e)
      out.counts[static_cast<std::size_t>(s) * static_cast<std::size_t>(out.experts) + static_cast<std::size_t>(e)] =
          e < r.experts ? r.at(s, e) : r.tokens[static_cast<std::size_t>(s)];
  return out;
}

}  // namespace epsim
