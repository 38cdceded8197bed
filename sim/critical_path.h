// What bound the step: the chain of tasks that ended last, walked back through the predecessor
// that released each task (the one that finished last; ties: the lower task id).
//
// Every collective is a barrier: it starts when its slowest participant is ready. The GPU that
// released a collective on the path is its straggler, by (release time - mean ready time of all
// participants). The critical GPU is the one that straggled the most in total; without stragglers
// (perfect balance) it is the GPU with the most compute on the path. The waits summed over the
// path's barriers (barrier_wait; alltoall_wait for the MoE all-to-alls alone) are how much longer
// the step took than if every barrier had started when the average GPU was ready.
#pragma once

#include <vector>

#include "sim/task_graph.h"

namespace epsim {

struct CriticalPath {
  std::vector<TaskId> tasks;          // first to last
  int gpu = -1;                       // the critical GPU
  Time gpu_straggle;                  // how long the others waited for it, summed over barriers
  int layer = -1;                     // the layer with the most time on the path
  Time layer_time;
  int collective = -1;                // the collective on the path that took the longest
  std::vector<int> straggler_by_layer;  // per layer: the GPU that released its last barrier (-1: none)
  std::vector<Time> straggle;         // per GPU: the waits at barriers on the path it released
  Time barrier_wait;                  // the waits at every barrier (collective) on the path
  Time alltoall_wait;                 // the same at the MoE all-to-alls (dispatch, combine, count exchange)
};

// `idle` (optional, per GPU): GPUs left out of a barrier's mean ready time (failed GPUs, which
// have nothing to do and are always ready).
CriticalPath critical_path(const TaskGraph& graph, int gpus, int layers, const std::vector<char>* idle = nullptr);

}  // namespace epsim
