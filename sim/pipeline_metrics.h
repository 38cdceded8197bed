// What a pipeline-parallel step did on each rank: how long it was busy with its slots, its bubble
// (the step time it was not), and the activation chunks its schedule held at the peak.
#pragma once

#include <string>
#include <vector>

#include "models/memory_model.h"
#include "models/units.h"
#include "sim/step_builder.h"
#include "sim/task_graph.h"

namespace epsim {

struct PipelineRankResult {
  int rank = 0;
  std::vector<int> stages;   // the virtual stages it runs (dualpipe: its stage of each direction)
  std::string layers;        // "0-7" or "0-7, 56-60"
  Time busy;                 // union over its slots of [first task start, last task end] on its GPUs
  Time bubble;               // step time - busy
  double bubble_fraction = 0;
  double peak_chunks = 0;    // activation chunks its schedule holds at the peak (a chunk = one micro-batch on one stage)
  MemoryReport memory;       // per GPU of the rank (filled by Simulation)
};

struct PipelineResult {
  std::string schedule;
  int ranks = 0, micro_batches = 0, stages = 0;
  std::vector<PipelineRankResult> per_rank;
  Time bubble;                // the largest rank bubble
  double bubble_fraction = 0;  // of the step time
};

PipelineResult pipeline_metrics(const TaskGraph& graph, const PipelineRun& run, Time step);

}  // namespace epsim
