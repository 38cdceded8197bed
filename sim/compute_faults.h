// What the faults section does to the compute tasks of one step. The step builder sets every
// compute task's duration through duration(), the one place:
//   - a GPU that holds no tokens (failed, or in an attention TP group with a failed GPU) skips its
//     per-token ops (attention, gate, shared expert, dense MLP, LM head, permutes): zero time; the
//     experts it serves run on the tokens it receives (none on a failed GPU, which holds no slot);
//   - a slowed GPU (faults.gpu_compute) takes 1 / speed as long for every task;
//   - noisy kernels (faults.kernel_jitter) multiply each task by its own lognormal draw of mean 1
//     (models/kernel_jitter.h), seeded by faults.seed, the step and the task id.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/kernel_jitter.h"
#include "sim/scenario.h"
#include "sim/task_graph.h"

namespace epsim {

// The ops (common_names.md) a compute task of `phase` runs, whose measured spreads give its CV:
// alternatives, the first the spread file measures is taken (none: the given CV).
std::vector<std::vector<std::string>> phase_ops(Phase phase);

class ComputeFaults {
 public:
  ComputeFaults() = default;  // healthy, no jitter
  ComputeFaults(const Scenario& scenario, const KernelJitter& jitter, int step);
  Time duration(Time nominal, int gpu, Phase phase, TaskId task) const;
  bool serves_tokens(int gpu) const { return serving_.empty() || serving_[static_cast<std::size_t>(gpu)] != 0; }

 private:
  std::vector<double> slowdown_;  // per GPU: 1 / speed (empty: all 1)
  std::vector<char> serving_;     // per GPU (empty: all serve)
  std::vector<double> cv_;        // per Phase (empty: no jitter)
  std::uint64_t seed_ = 0;
  int step_ = 0;
};

// The jitter a scenario asks for (reads faults.kernel_spread_file when measured).
KernelJitter make_kernel_jitter(const FaultSpec& faults);

}  // namespace epsim
