// Builds the task graph of one forward step from a scenario: per GPU and layer, attention (with
// its TP collectives), gate, dispatch, experts, shared expert, combine or the dense MLP, then the
// LM head, in the scenario's overlap schedule.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "models/cost_model.h"
#include "models/gate_model.h"
#include "models/layer_ops.h"
#include "placement/placement.h"
#include "sim/comm_scheme.h"
#include "sim/scenario.h"
#include "sim/task_graph.h"
#include "topology/cluster.h"

namespace epsim {

// Routed tokens each GPU computes in one MoE layer (all micro-batches).
struct LayerLoad {
  std::vector<std::int64_t> per_gpu;
  std::int64_t max() const;
  double mean() const;
};

class StepBuilder {
 public:
  StepBuilder(const Scenario& scenario, const Cluster& cluster, const CostModel& cost, const GateModel& gate,
              const Placement& placement);
  TaskGraph build();
  // Indexed by layer; empty for dense layers.
  const std::vector<LayerLoad>& loads() const { return loads_; }

 private:
  struct Traffic;  // routing sample -> dispatch matrix, cached per layer
  void layer(TaskGraph& g, int l, std::vector<TaskId>& last);
  TaskId tp_collective(TaskGraph& g, int l, std::vector<TaskId>& last);
  TaskId moe_collective(TaskGraph& g, int l, Phase phase, std::vector<TaskId>& last);
  void chain(TaskGraph& g, std::vector<TaskId>& last, int gpu, TaskId next);

  const Scenario& sc_;
  const Cluster& cluster_;
  const CostModel& cost_;
  LayerOps ops_;
  std::shared_ptr<Traffic> traffic_;
  std::vector<LayerLoad> loads_;
  int gpus_;
};

}  // namespace epsim
