#include "sim/simulation.h"

#include "models/errors.h"
#include "sim/analytical_network.h"
#include "sim/executor.h"
#include "sim/simulator.h"
#include "sim/step_builder.h"
#include "sim/step_metrics.h"

namespace epsim {

std::unique_ptr<Network> make_network(const std::string& model, Simulator& sim, const Cluster& cluster) {
  if (model == "analytical") return std::make_unique<AnalyticalNetwork>(sim, cluster);
  throw ConfigError("network.model", "\"" + model + "\"", "unknown network model");
}

Simulation::Simulation(Scenario scenario)
    : scenario_(std::move(scenario)), cluster_(scenario_.cluster),
      cost_(make_cost_model(scenario_.cost_model, scenario_.gpu)) {}

const StepResult& Simulation::run() {
  const Scenario& sc = scenario_;
  const GateModel gate(sc.routing, sc.model);
  const Placement placement = Placement::make(sc.placement, sc.model.routed_experts, sc.parallelism.ep);
  StepBuilder builder(sc, cluster_, *cost_, gate, placement);
  graph_ = builder.build();

  Simulator sim;
  auto net = make_network(sc.network.model, sim, cluster_);
  Executor exec(sim, *net, graph_, SmSharing{sc.gpu.sms, sc.schedule.comm_sms});
  StepResult& r = result_;
  r = StepResult{};
  r.scenario = sc.name;
  r.network = net->name() + "/" + sc.network.scheme;
  r.cost_model = cost_->name();
  r.gpus = cluster_.gpu_count();
  r.gpus_per_node = cluster_.gpus_per_node();
  r.step_time = exec.run();
  r.events = sim.events_executed();
  r.tokens_per_gpu = sc.workload.tokens();
  r.links = net->counters();
  r.memory = estimate_memory(LayerOps(sc.model, sc.parallelism.attention_tp), sc.parallelism, sc.workload, sc.gpu);
  collect_metrics(graph_, builder.loads(), sc.model.layers, r);
  return r;
}

}  // namespace epsim
