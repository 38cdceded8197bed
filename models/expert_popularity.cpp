#include "models/expert_popularity.h"

#include <cmath>
#include <numeric>

#include "models/random_stream.h"

namespace epsim {

std::vector<int> popularity_order(std::uint64_t seed, int experts, int layer) {
  std::vector<int> order(static_cast<std::size_t>(experts));
  std::iota(order.begin(), order.end(), 0);
  RandomStream rng(derive_seed(seed, {0x706f70 /* "pop" */, layer}));
  for (int i = experts - 1; i > 0; --i) {  // Fisher-Yates
    const auto j = static_cast<std::size_t>(rng.index(i + 1));
    std::swap(order[static_cast<std::size_t>(i)], order[j]);
  }
  return order;
}

std::vector<double> expert_popularity(const RoutingSpec& spec, int experts, int layer) {
  const std::size_t E = static_cast<std::size_t>(experts);
  std::vector<double> w(E, 1.0);
  if (spec.distribution == "zipf") {
    const std::vector<int> order = popularity_order(spec.seed, experts, layer);
    for (std::size_t r = 0; r < E; ++r)
      w[static_cast<std::size_t>(order[r])] = std::pow(static_cast<double>(r + 1), -spec.zipf_s);
  } else if (spec.distribution == "hot") {
    const std::vector<int> order = popularity_order(spec.seed, experts, layer);
    const std::size_t h = static_cast<std::size_t>(spec.hot_experts);
    for (std::size_t r = 0; r < E; ++r)
      w[static_cast<std::size_t>(order[r])] =
          r < h ? spec.hot_fraction / static_cast<double>(h) : (1.0 - spec.hot_fraction) / static_cast<double>(E - h);
  }
  return w;
}

}  // namespace epsim
