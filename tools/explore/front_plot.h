// The search's Pareto fronts as one self-contained SVG: throughput per GPU against TPOT (left) and
// against TTFT (right); every pruning-pass point in grey, confirmed points in blue, the confirmed
// front in red and joined, each front point numbered as in the table, the targets dashed.
#pragma once

#include <string>
#include <vector>

#include "tools/explore/deployment_search.h"

namespace epsim::explore {

struct FrontPlot {
  std::string title;
  int percentile = 90;
  double ttft_target = 0, tpot_target = 0;
  // Front numbers by confirmed index (0: not on a front).
  std::vector<int> numbers;
};

std::string front_svg(const FrontPlot& plot, const std::vector<SearchPoint>& pruned, const std::vector<SearchPoint>& confirmed);

}  // namespace epsim::explore
