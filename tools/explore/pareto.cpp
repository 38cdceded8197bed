#include "tools/explore/pareto.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace epsim::explore {

std::vector<std::size_t> pareto_front(const std::vector<ParetoItem>& items) {
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  // Decreasing gain, then increasing cost: an item is on the front when its cost is below every
  // cost seen before it.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (items[a].gain != items[b].gain) return items[a].gain > items[b].gain;
    return items[a].cost < items[b].cost;
  });
  std::vector<std::size_t> front;
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t i : order)
    if (items[i].cost < best) {
      front.push_back(i);
      best = items[i].cost;
    }
  return front;
}

}  // namespace epsim::explore
