// One scenario, simulated: parse -> build -> run -> measure. Owns every object of the run, so two
// simulations can live in one process.
#pragma once

#include <memory>

#include "models/cost_model.h"
#include "sim/scenario.h"
#include "sim/step_result.h"
#include "sim/task_graph.h"
#include "topology/cluster.h"

namespace epsim {

class Network;
class Simulator;

// Makes the network a scenario asks for.
std::unique_ptr<Network> make_network(const std::string& model, Simulator& sim, const Cluster& cluster);

class Simulation {
 public:
  explicit Simulation(Scenario scenario);
  // Runs one step; the task graph stays available for the trace.
  const StepResult& run();
  const Scenario& scenario() const { return scenario_; }
  const Cluster& cluster() const { return cluster_; }
  const TaskGraph& graph() const { return graph_; }
  const StepResult& result() const { return result_; }

 private:
  Scenario scenario_;
  Cluster cluster_;
  std::unique_ptr<CostModel> cost_;
  TaskGraph graph_;
  StepResult result_;
};

}  // namespace epsim
