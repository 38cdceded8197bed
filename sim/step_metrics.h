// Reads a finished task graph into per-layer and per-GPU figures.
#pragma once

#include "sim/step_builder.h"
#include "sim/step_result.h"
#include "sim/task_graph.h"

namespace epsim {

// Fills layers and per_gpu of `result` from the times in `graph`.
void collect_metrics(const TaskGraph& graph, const std::vector<LayerLoad>& loads, int layers, StepResult& result);

// Time covered by `a` (intervals [start, end), any order, may overlap) and not by `b`.
struct Interval {
  Time start, end;
};
Time uncovered(std::vector<Interval> a, std::vector<Interval> b);

}  // namespace epsim
