// How far a run's flow ends fall from an exact run's, relative to each flow's exact duration (every
// flow starts at 0, so its duration is its exact end): what `epsim net --vs-exact` and
// `epsim-simgrid-bench --window` print against the completion window (sim/flow_network.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace epsim::cli {

struct EndError {
  double early = 0.0;  // the most early flow, as a positive fraction of its duration (0: none early)
  double late = 0.0;   // the most late flow, likewise
  bool within(double window) const { return early <= window && late <= window; }
};

// `run` and `exact`: per flow, its end in seconds; flows whose exact end is not after 0 are skipped.
inline EndError end_error(const std::vector<double>& run, const std::vector<double>& exact) {
  EndError e;
  for (std::size_t i = 0; i < run.size() && i < exact.size(); ++i) {
    if (!(exact[i] > 0.0)) continue;
    const double rel = (run[i] - exact[i]) / exact[i];
    e.early = std::max(e.early, -rel);
    e.late = std::max(e.late, rel);
  }
  return e;
}

}  // namespace epsim::cli
