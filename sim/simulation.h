// One scenario, simulated: parse -> build -> run -> measure. Owns every object of the run, so two
// simulations can live in one process.
#pragma once

#include <memory>

#include "models/cost_model.h"
#include "models/gate_model.h"
#include "models/kernel_jitter.h"
#include "sim/layer_listing.h"
#include "sim/scenario.h"
#include "sim/step_builder.h"
#include "sim/step_result.h"
#include "sim/task_graph.h"
#include "topology/cluster.h"

namespace epsim {

class Network;
class Simulator;

// Makes the network a scenario asks for.
std::unique_ptr<Network> make_network(const NetworkSpec& spec, Simulator& sim, const Cluster& cluster);

// One line per simulated step of `epsim run --steps N`.
struct StepSummary {
  int step = 0;
  Time step_time;
  double imbalance_worst = 1.0;  // max / mean routed tokens per expert, worst MoE layer
  double imbalance_mean = 1.0;   // the same, averaged over MoE layers
  std::int64_t dropped = 0;      // selections dropped by the capacity factor, all layers
  std::int64_t lost = 0;         // selections of experts a failure left without a replica, all layers
  Time barrier_wait;             // waits at the barriers on the critical path (StepResult)
  Time alltoall_wait;
};

class Simulation {
 public:
  explicit Simulation(Scenario scenario);
  // Runs one step; the task graph stays available for the trace.
  const StepResult& run();
  // Runs `steps` steps; after each, the gate observes every layer's expert loads (the bias rule
  // rebalances when routing.balance = bias). result() and graph() hold the last step.
  std::vector<StepSummary> run_steps(int steps);
  // Every step run so far (run_steps), and per GPU the barrier waits it caused over them.
  const std::vector<StepSummary>& history() const { return history_; }
  const std::vector<Time>& straggle_total() const { return straggle_total_; }
  const Scenario& scenario() const { return scenario_; }
  const Cluster& cluster() const { return cluster_; }
  const TaskGraph& graph() const { return graph_; }
  const StepResult& result() const { return result_; }
  const CostModel& cost_model() const { return *cost_; }
  // One dense and one MoE layer's ops as the last step ran them (sim/layer_listing.h), the experts
  // at the most loaded GPU's rows per micro-batch.
  OpsReport layer_ops() const;
  // parallelism.pp > 1: the schedule and the tasks each slot emitted (last step).
  const PipelineRun& pipeline() const { return pipeline_; }

 private:
  Scenario scenario_;
  std::unique_ptr<CostModel> cost_;  // before the cluster: its kernel links' rate may come from the profile
  Cluster cluster_;
  GateModel gate_;
  TaskGraph graph_;
  StepResult result_;
  std::vector<LayerLoad> loads_;  // of the last step
  KernelJitter jitter_;           // faults.kernel_jitter (its measured spreads read once)
  std::vector<StepSummary> history_;
  std::vector<Time> straggle_total_;
  PipelineRun pipeline_;
};

}  // namespace epsim
