// What the faults section does to the compute tasks of one step. The step builder sets every
// compute task's duration through duration(), the one place:
//   - a GPU that holds no tokens (failed, or in an attention TP group with a failed GPU) skips its
//     per-token ops (attention, gate, shared expert, dense MLP, LM head, permutes): zero time; the
//     routed experts' ops (routed_expert_op) run on the tokens it receives (none on a failed GPU,
//     which holds no slot);
//   - a slowed GPU (faults.gpu_compute) takes 1 / speed as long for every task;
//   - noisy kernels (faults.kernel_jitter) multiply each task (one op of the layer program) by its
//     own lognormal draw of mean 1 (models/kernel_jitter.h), seeded by faults.seed, the step and the
//     task id; measured: the CV of the task's op (op_cv).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/kernel_jitter.h"
#include "models/op_name.h"
#include "sim/scenario.h"
#include "sim/task_graph.h"

namespace epsim {

// Whether `op` computes the routed experts (expert_up, swiglu, expert_down, their quant_act and
// gradients): the ops a GPU without tokens still runs for the tokens it receives.
bool routed_expert_op(const OpName& op);

// The CV of `op` under `jitter`: its measured spread, else (dense_* ops, which the layer files do
// not time) the shared expert's same op (the same MLP over every token), else the given CV.
double op_cv(const KernelJitter& jitter, const OpName& op);

class ComputeFaults {
 public:
  ComputeFaults() = default;  // healthy, no jitter
  ComputeFaults(const Scenario& scenario, const KernelJitter& jitter, int step);
  // The time of task `task`, op `op` on `gpu`, nominally `nominal`.
  Time duration(Time nominal, int gpu, const OpName& op, TaskId task) const;
  bool serves_tokens(int gpu) const { return serving_.empty() || serving_[static_cast<std::size_t>(gpu)] != 0; }

 private:
  std::vector<double> slowdown_;  // per GPU: 1 / speed (empty: all 1)
  std::vector<char> serving_;     // per GPU (empty: all serve)
  std::vector<double> cv_;        // per op (cv_index; empty: no jitter)
  std::uint64_t seed_ = 0;
  int step_ = 0;
};

// The jitter a scenario asks for (reads faults.kernel_spread_file when measured).
KernelJitter make_kernel_jitter(const FaultSpec& faults);

}  // namespace epsim
