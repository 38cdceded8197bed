#include "models/selection_marginals.h"

#include <algorithm>
#include <numeric>

#include "models/errors.h"

namespace epsim {

std::vector<double> water_fill(const std::vector<double>& weights, const std::vector<double>& caps, double total) {
  const std::size_t n = weights.size();
  if (caps.size() != n) throw SimulationError("water_fill: weights and caps differ in size");
  // Items saturate (x_i = cap_i) in increasing order of cap_i / w_i as c grows.
  std::vector<std::size_t> order;
  double capacity = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (weights[i] < 0.0 || caps[i] < 0.0) throw SimulationError("water_fill: negative weight or cap");
    if (weights[i] > 0.0 && caps[i] > 0.0) {
      order.push_back(i);
      capacity += caps[i];
    }
  }
  if (capacity < total * (1.0 - 1e-12))
    throw SimulationError("water_fill: caps of the weighted items sum below the total");
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const double ra = caps[a] / weights[a], rb = caps[b] / weights[b];
    return ra != rb ? ra < rb : a < b;
  });
  // rest[j]: the weight of order[j..], summed from the smallest up. (Subtracting the saturated
  // items' weights from the total instead cancels catastrophically under steep skew: zipf_s = 16
  // leaves a rest of 8^-16 ~ 4e-15 next to a rounding error of 1e-16, and the marginals summed to
  // 8.07 instead of top_k = 8.)
  std::vector<double> rest(order.size() + 1, 0.0);
  for (std::size_t r = order.size(); r-- > 0;) rest[r] = rest[r + 1] + weights[order[r]];
  double remaining = total;
  std::vector<double> x(n, 0.0);
  std::size_t j = 0;
  for (; j < order.size(); ++j) {
    const std::size_t i = order[j];
    const double c = remaining / rest[j];
    if (c * weights[i] < caps[i]) break;  // no further item saturates
    x[i] = caps[i];
    remaining -= caps[i];
  }
  if (j < order.size()) {
    const double c = remaining / rest[j];
    for (std::size_t r = j; r < order.size(); ++r) x[order[r]] = c * weights[order[r]];
  }
  return x;
}

SelectionMarginals selection_marginals(const std::vector<double>& weights, int top_k, int groups, int topk_groups) {
  const std::size_t E = weights.size();
  SelectionMarginals m;
  if (groups <= 1 || topk_groups >= groups) {
    m.group.assign(static_cast<std::size_t>(std::max(groups, 1)), 1.0);
    m.expert = water_fill(weights, std::vector<double>(E, 1.0), top_k);
    return m;
  }
  const std::size_t G = static_cast<std::size_t>(groups), per = E / G;
  std::vector<double> group_weight(G, 0.0);
  for (std::size_t e = 0; e < E; ++e) group_weight[e / per] += weights[e];
  m.group = water_fill(group_weight, std::vector<double>(G, 1.0), topk_groups);
  std::vector<double> reach(E), scaled(E);
  for (std::size_t e = 0; e < E; ++e) {
    reach[e] = m.group[e / per];
    scaled[e] = reach[e] * weights[e];
  }
  m.expert = water_fill(scaled, reach, top_k);
  return m;
}

}  // namespace epsim
