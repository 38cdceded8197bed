// The step-time distribution of `epsim run --steps N` (noisy kernels, changing routing) and how much
// of its tail the barriers explain.
//
// Percentiles are nearest-rank: p_q is the ceil(q N)-th shortest step (p99 of 50 steps is the
// slowest). The tail is p99 - p50. Each step's barrier wait is the sum, over the barriers
// (collectives) on its critical path, of how long the barrier started after its participants'
// mean ready time (sim/critical_path.h): with jitter every all-to-all waits for its slowest GPU.
// The tail's barrier part is the p99 step's barrier wait minus the p50 step's, and every wait is
// attributed to the GPU that released the barrier (the straggler).
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "sim/simulation.h"

namespace epsim {

struct StepDistribution {
  int steps = 0;
  Time p50, p99, mean, min, max;  // step time
  int p50_step = -1, p99_step = -1;
  Time wait_p50, wait_p99;        // barrier wait of those two steps
  Time alltoall_wait_p50, alltoall_wait_p99;
  Time wait_mean, alltoall_wait_mean;
  Time tail() const { return p99 - p50; }
  Time tail_from_barriers() const { return wait_p99 - wait_p50; }
  struct Straggler {
    int gpu;
    Time wait;  // summed over every step
  };
  std::vector<Straggler> stragglers;  // the GPUs barriers waited for most, most first (at most 5)
  Time straggle_total;                // every GPU's together
};

StepDistribution step_distribution(const std::vector<StepSummary>& steps, const std::vector<Time>& straggle);
nlohmann::json to_json(const StepDistribution& d);

}  // namespace epsim
