// Pareto fronts of (more is better, less is better) pairs, e.g. throughput per GPU against latency.
#pragma once

#include <cstddef>
#include <vector>

namespace epsim::explore {

struct ParetoItem {
  double gain = 0;  // maximised
  double cost = 0;  // minimised
};

// Indices of the items no other item dominates (another has gain >= and cost <=, one strictly),
// by decreasing gain (ties: the first index). Equal items: the first stays.
std::vector<std::size_t> pareto_front(const std::vector<ParetoItem>& items);

}  // namespace epsim::explore
